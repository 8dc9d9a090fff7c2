"""A plan bought with Telegram Stars over the Telegram emulator, with the real dispatcher and
PostgreSQL: ⭐ on the plan's card, the invoice of the price in ⭐ (rounded up), the plan
active once however often the successful_payment comes, an altered payload and a plan
archived before the pre-checkout refused with a reason, a plan archived after it (the money
stays on the balance, the user is told), an admin's /refund of such a payment, and an
invoice link (createInvoiceLink) paid."""

from __future__ import annotations

import logging

import pytest
from aiogram.types import User as TgUser

from billing import plans
from billing.models import PaymentStatus
from bot.routers import stars as stars_router
from tests.bot.conftest import RunningBot, StartBot, wait_until
from tests.bot.test_plans_buying import _holdings
from tests.bot.test_stars_refund import ADMIN, _admin, _debits
from tests.bot.test_stars_topup import STARS, _logged, _send_invoice, _topups

# 199 ₽ at 1.20 ₽ a ⭐ (STARS): 165.83, rounded up to 166 ⭐, which credit 199.20 ₽.
PRO_STARS, PRO_CREDIT = 166, 19_920


async def _plan_invoice(user, *, short: bool = False):  # type: ignore[no-untyped-def]
    """/plans → the Про card → ⭐ (``short``: from the "not enough on the balance" screen
    the card's 💰 leads to): the invoice message."""
    await user.send_text("/plans")
    screen = await user.wait_for_text("Ваш тариф")
    await user.press(screen, text="Про — 199 ₽")
    card = await user.wait_for_text("30 операций в месяц")
    assert card.button_texts == [
        "💰 Купить с баланса — 199 ₽",
        f"⭐ Оплатить звёздами — {PRO_STARS} ⭐",
        "◀️ Все тарифы",
    ]
    if short:
        await user.press(card, text="Купить с баланса")
        card = await user.wait_for_text("стоит 199 ₽, а на балансе 0 ₽")
        assert card.button_texts == [
            "💳 Пополнить баланс",
            f"⭐ Оплатить звёздами — {PRO_STARS} ⭐",
            "◀️ Все тарифы",
        ]
    await user.press(card, text="Оплатить звёздами")
    return await user.wait_for(lambda m: m.from_bot and "invoice" in m.raw)


async def _archive(app: RunningBot, code: str = "pro") -> None:
    async with app.sessionmaker() as session:
        await plans.archive_plan(session, code)
        await session.commit()


async def _user_id(app: RunningBot, telegram_id: int) -> int:
    account = await app.user(telegram_id)
    assert account is not None
    return account.id


async def test_a_plan_paid_in_stars_is_active_and_credited_once(
    start_bot: StartBot, tg, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.routers.stars")
    app = await start_bot(yookassa=False, **STARS)
    user = tg.user(7201)
    invoice = await _plan_invoice(user)
    assert invoice.raw["invoice"]["currency"] == "XTR"
    assert invoice.raw["invoice"]["total_amount"] == PRO_STARS
    [row] = await app.payments()
    assert (row.stars, row.amount, row.plan_id, row.status) == (
        PRO_STARS,
        PRO_CREDIT,
        2,
        PaymentStatus.PENDING,
    )

    paid = await user.pay(invoice)
    assert paid["ok"], paid
    done = await user.wait_for_text("подписка «Про» подключена")
    assert "Оплата 199,20 ₽ получена" in done.text and "На балансе 0,20 ₽" in done.text
    [holding] = await _holdings(app, await _user_id(app, 7201))
    assert (holding.plan_id, holding.payment_id, holding.status) == (2, row.id, "active")

    # The same successful_payment again: no second credit, no second plan, no message.
    await user.redeliver(paid["update"]["update_id"])
    await wait_until(lambda: _logged(caplog, "delivered again: already credited"))
    assert len(await _topups(app)) == 1
    assert len(await _holdings(app, await _user_id(app, 7201))) == 1
    assert (await app.user(7201)).balance == 20  # type: ignore[union-attr]
    assert sum("подключена" in m.text for m in await user.bot_messages()) == 1


async def test_an_altered_or_archived_plan_payload_is_refused_at_the_pre_checkout(
    start_bot: StartBot, tg
) -> None:
    app = await start_bot(yookassa=False, **STARS)
    user = tg.user(7202)
    invoice = await _plan_invoice(user)
    [row] = await app.payments()

    altered = await _send_invoice(app, 7202, f"stars:{row.id}:{'0' * 32}", PRO_STARS)
    answer = await user.pay(altered.message_id)
    assert not answer["ok"] and "изменён" in answer["error_message"]

    await _archive(app)
    answer = await user.pay(invoice)
    assert not answer["ok"] and "больше не продаётся" in answer["error_message"]
    assert await user.stars() == 1000 and await _topups(app) == []
    [row] = await app.payments()
    assert row.status == PaymentStatus.PENDING


async def test_a_plan_archived_after_the_pre_checkout_leaves_the_money_on_the_balance(
    start_bot: StartBot, tg
) -> None:
    app = await start_bot(yookassa=False, **STARS)
    user = tg.user(7203)
    invoice = await _plan_invoice(user, short=True)
    approved = await user.pay(invoice, hold=True)
    assert approved["ok"], approved
    await _archive(app)  # between Telegram's approval and its charge
    paid = await user.complete_payment(approved["approved"])
    assert paid["ok"], paid
    told = await user.wait_for_text("подключить не удалось")
    assert "его больше нет в продаже" in told.text and "199,20 ₽" in told.text
    assert (await app.user(7203)).balance == PRO_CREDIT  # type: ignore[union-attr]
    assert await _holdings(app, await _user_id(app, 7203)) == []


async def test_an_admin_refunds_a_plan_paid_in_stars(start_bot: StartBot, tg) -> None:
    app = await start_bot(yookassa=False, ADMIN_IDS=[ADMIN], **STARS)
    user = tg.user(7204)
    paid = await user.pay(await _plan_invoice(user))
    assert paid["ok"], paid
    await user.wait_for_text("подписка «Про» подключена")
    [row] = await app.payments()
    admin = await _admin(tg)

    await admin.send_text(f"/refund {row.id}")
    done = await admin.wait_for_text(f"Возвращено {PRO_STARS} ⭐")
    assert "списано 199,20 ₽" in done.text and "это долг" in done.text
    await user.wait_for_text("Звёзды за оплату вернулись")
    assert await user.stars() == 1000
    [debit] = await _debits(app)
    assert debit.amount == -PRO_CREDIT and debit.payment_id == row.id
    # The plan was paid from the credit: the refund leaves the debt on record.
    assert (await app.user(7204)).balance == 20 - PRO_CREDIT  # type: ignore[union-attr]
    [row] = await app.payments()
    assert row.status == PaymentStatus.REFUNDED


async def test_an_invoice_link_of_a_plan_is_paid_like_the_invoice(start_bot: StartBot, tg) -> None:
    app = await start_bot(yookassa=False, **STARS)
    user = tg.user(7205)
    await user.send_text("/start")
    await user.wait_for_text("Привет")
    async with app.sessionmaker() as session:
        link = await stars_router.invoice_link(
            session,
            app.settings,
            app.bot,
            TgUser(id=7205, is_bot=False, first_name="Link"),
            "ru",
            plan_code="pack10",
        )
    assert link.startswith("https://t.me/$")
    [call] = app.sent("createInvoiceLink")
    [row] = await app.payments()
    assert call.method.payload == f"stars:{row.id}:{row.idempotence_key}"
    assert (row.stars, row.amount, row.plan_id) == (67, 8_040, 3)  # 80 ₽: 66.67 → 67 ⭐

    paid = await user.pay_link(link)
    assert paid["ok"], paid
    done = await user.wait_for_text("пакет «Пакет 10 операций» подключён")
    assert "На балансе 0,40 ₽" in done.text
    [holding] = await _holdings(app, await _user_id(app, 7205))
    assert (holding.kind, holding.units_left, holding.payment_id) == ("package", 10, row.id)

    # The same link paid once more: refused at the pre-checkout, nothing charged.
    again = await user.pay_link(link)
    assert not again["ok"] and "уже оплачен" in again["error_message"]
    assert await user.stars() == 1000 - 67
