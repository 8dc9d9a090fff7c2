"""Refunds of Stars payments over the Telegram emulator with the real dispatcher: an admin's
/refund (refundStarPayment, then the same debit as a YooKassa refund, once), the same
command again, CHARGE_ALREADY_REFUNDED answered as done, a part refused, a debt on record,
and Telegram's own refunded_payment handled the same way."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from billing.models import LedgerEntry, LedgerKind, PaymentStatus
from tests.bot.conftest import RunningBot, StartBot, wait_until
from tests.bot.test_stars_topup import STARS, _invoice

ADMIN = 7101


async def _paid(app: RunningBot, user) -> dict:  # type: ignore[no-untyped-def]
    invoice = await _invoice(user)
    paid = await user.pay(invoice)
    assert paid["ok"], paid
    await user.wait_for_text("Оплата получена")
    return paid


async def _debits(app: RunningBot) -> list[LedgerEntry]:
    async with app.sessionmaker() as session:
        rows = await session.scalars(
            select(LedgerEntry).where(LedgerEntry.kind == LedgerKind.PAYMENT_REFUND.value)
        )
        return list(rows.all())


async def _admin(tg):  # type: ignore[no-untyped-def]
    admin = tg.user(ADMIN)
    await admin.send_text("/start")
    await admin.wait_for_text("Привет")
    return admin


async def test_an_admin_refunds_stars_once_and_the_user_is_told(start_bot: StartBot, tg) -> None:
    app = await start_bot(yookassa=False, ADMIN_IDS=[ADMIN], **STARS)
    user = tg.user(7102)
    paid = await _paid(app, user)
    [row] = await app.payments()
    admin = await _admin(tg)

    await admin.send_text(f"/refund {row.id} 50")
    refused = await admin.wait_for_text("только целиком")
    assert f"#{row.id}" in refused.text
    assert await user.stars() == 900

    await admin.send_text(f"/refund {row.id}")
    done = await admin.wait_for_text("Возвращено 100 ⭐")
    assert "списано 120 ₽" in done.text and "Баланс пользователя 7102: 0 ₽" in done.text
    told = await user.wait_for_text("Звёзды за оплату вернулись")
    assert "120 ₽" in told.text and "Текущий баланс: 0 ₽" in told.text
    assert await user.stars() == 1000
    [debit] = await _debits(app)
    assert debit.amount == -12_000 and debit.payment_id == row.id
    [row] = await app.payments()
    assert row.status == PaymentStatus.REFUNDED and row.refunded_amount == 12_000

    # The same command again (by the charge id this time): nothing new at Telegram or here.
    await admin.send_text(f"/refund {paid['charge_id']}")
    await admin.wait_for_text("уже возвращены")
    assert len(await tg.calls("refundStarPayment")) == 1
    assert len(await _debits(app)) == 1 and await user.stars() == 1000


async def test_charge_already_refunded_is_answered_as_done_and_debited_once(
    start_bot: StartBot, tg
) -> None:
    app = await start_bot(yookassa=False, ADMIN_IDS=[ADMIN], **STARS)
    user = tg.user(7103)
    paid = await _paid(app, user)
    # The balance was spent: the debit leaves a debt on record.
    async with app.sessionmaker() as session:
        from billing import accounts

        account = await accounts.find_user_by_telegram_id(session, 7103)
        assert account is not None
        await accounts.adjust(session, user_id=account.id, amount=-5_000, reason="spent")
        await session.commit()
    # Telegram refunded the charge and its refunded_payment never reached the bot.
    await tg.refund_charge(paid["charge_id"], notify=False)
    assert await user.stars() == 1000 and await _debits(app) == []

    admin = await _admin(tg)
    [row] = await app.payments()
    await admin.send_text(f"/refund {row.id}")
    done = await admin.wait_for_text("Возвращено 100 ⭐")
    assert "это долг" in done.text and "50 ₽, это долг" in done.text
    [call] = await tg.calls("refundStarPayment")
    assert "CHARGE_ALREADY_REFUNDED" in call["error"]
    [debit] = await _debits(app)
    assert debit.amount == -12_000
    assert (await app.user(7103)).balance == -5_000  # type: ignore[union-attr]
    assert await user.stars() == 1000


async def test_telegrams_refunded_payment_is_debited_once(
    start_bot: StartBot, tg, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.routers.stars")
    app = await start_bot(yookassa=False, **STARS)
    user = tg.user(7104)
    paid = await _paid(app, user)
    refunded = await tg.refund_charge(paid["charge_id"])
    await user.wait_for_text("Звёзды за оплату вернулись")
    [debit] = await _debits(app)
    assert debit.amount == -12_000
    assert (await app.user(7104)).balance == 0  # type: ignore[union-attr]

    await user.redeliver(refunded["update"]["update_id"])
    await wait_until(lambda: _logged(caplog, "already debited"))
    assert len(await _debits(app)) == 1
    texts = [m.text for m in await user.bot_messages()]
    assert sum("Звёзды за оплату вернулись" in t for t in texts) == 1


async def _logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return text in caplog.text
