"""/refund over the Telegram emulator with the real dispatcher, PostgreSQL and the YooKassa
emulator: an admin returns a payment (or part of it) to the card; the user is told at once
in their language; the same command again makes no second refund; bad input and unknown
payments change nothing; nobody but ADMIN_IDS can use it."""

from __future__ import annotations

from sqlalchemy import select

from billing import accounts
from billing.models import LedgerEntry, LedgerKind, PaymentNotice, PaymentRefund
from billing.payments import TopUpStarted, reconcile_payment, start_topup
from tests.bot.conftest import RunningBot, StartBot, wait_until

ADMIN = 5101
TARGET = 5102
STRANGER = 5104


async def _paid(
    app: RunningBot, yk, telegram_id: int, amount: int, language: str = "ru"
) -> TopUpStarted:  # type: ignore[no-untyped-def]
    """A user with a credited YooKassa payment of ``amount`` kopecks."""
    async with app.sessionmaker() as session:
        account, _ = await accounts.get_or_create_user(
            session, telegram_id=telegram_id, free_operations=0, language=language
        )
        await session.commit()
    gateway = app.dispatcher["gateway"]
    started = await start_topup(
        app.sessionmaker, gateway, app.settings, user_id=account.id, amount=amount
    )
    await yk.mark_succeeded(started.yookassa_payment_id)
    credited = await reconcile_payment(app.sessionmaker, gateway, payment_id=started.payment_id)
    assert credited.outcome.value == "credited"
    return started


async def _refund_entries(app: RunningBot) -> list[LedgerEntry]:
    async with app.sessionmaker() as session:
        rows = await session.scalars(
            select(LedgerEntry).where(LedgerEntry.kind == LedgerKind.PAYMENT_REFUND.value)
        )
        return list(rows.all())


async def test_an_admin_refunds_a_payment_and_the_user_is_told(
    start_bot: StartBot, tg, yk
) -> None:
    app = await start_bot(ADMIN_IDS=[ADMIN])
    target = tg.user(TARGET)
    await target.send_text("/start")
    await target.wait_for_text("Привет")
    started = await _paid(app, yk, TARGET, 30_000)
    admin = tg.user(ADMIN)

    await admin.send_text(f"/refund {started.payment_id} 100")
    done = await admin.wait_for_text("Возвращено на карту 100 ₽")
    assert f"по платежу #{started.payment_id}" in done.text
    assert f"Баланс пользователя {TARGET}: 200 ₽" in done.text
    told = await target.wait_for_text("Оформлен возврат 100 ₽")
    assert "Текущий баланс: 200 ₽." in told.text

    async def marked_sent() -> bool:  # right after the message went out
        async with app.sessionmaker() as session:
            notice = await session.scalar(
                select(PaymentNotice).where(PaymentNotice.kind == "refunded")
            )
            return notice.outcome == "sent"

    await wait_until(marked_sent)
    async with app.sessionmaker() as session:
        [request] = (await session.scalars(select(PaymentRefund))).all()
    assert (request.status, request.requested_by) == ("succeeded", f"admin:{ADMIN}")

    # The same command again: reported, not repeated.
    await admin.send_text(f"/refund {started.payment_id} 100")
    again = await admin.wait_for_text("уже сделан")
    assert f"/refund {started.payment_id} 100 again" in again.text
    assert len(await yk.refunds()) == 1
    # "again": another refund of 100 ₽; then the rest, with the debt-free balance 0.
    await admin.send_text(f"/refund {started.payment_id} 100 again")
    await admin.wait_for_text("Баланс пользователя 5102: 100 ₽")
    await admin.send_text(f"/refund {started.payment_id}")
    await admin.wait_for_text("Баланс пользователя 5102: 0 ₽")
    assert [e.amount for e in await _refund_entries(app)] == [-10_000, -10_000, -10_000]
    assert len(await yk.refunds()) == 3
    assert (await app.user(TARGET)).balance == 0  # type: ignore[union-attr]
    await target.wait_for_text("Текущий баланс: 0 ₽.")


async def test_a_refund_of_spent_money_says_it_is_a_debt(start_bot: StartBot, tg, yk) -> None:
    app = await start_bot(ADMIN_IDS=[ADMIN])
    target = tg.user(TARGET, language="en")
    await target.send_text("/start")
    await target.wait_for_text("Hi")
    started = await _paid(app, yk, TARGET, 10_000, language="en")
    async with app.sessionmaker() as session:
        account = await accounts.find_user_by_telegram_id(session, TARGET)
        await accounts.adjust(session, user_id=account.id, amount=-6_000, reason="spent")
        await session.commit()
    admin = tg.user(ADMIN, language="en")
    await admin.send_text(f"/refund {started.yookassa_payment_id}")
    done = await admin.wait_for_text("Returned 100 ₽")
    assert "balance is −60 ₽, a debt" in done.text
    told = await target.wait_for_text("refund")
    assert "−60 ₽" in told.text


async def test_bad_input_and_unknown_payments_change_nothing(start_bot: StartBot, tg, yk) -> None:
    app = await start_bot(ADMIN_IDS=[ADMIN])
    started = await _paid(app, yk, TARGET, 10_000)
    admin = tg.user(ADMIN)

    await admin.send_text("/refund")
    await admin.wait_for_text("Формат: /refund ПЛАТЁЖ")
    await admin.send_text("/refund 424242")
    await admin.wait_for_text("Платежа «424242» нет. Ничего не изменено.")
    await admin.send_text("/refund #1")
    await admin.wait_for_text("«#1» — не номер платежа")
    await admin.send_text(f"/refund {started.payment_id} 500")
    await admin.wait_for_text("можно вернуть не больше 100 ₽, а не 500 ₽")
    await admin.send_text(f"/refund {started.payment_id} -5")
    await admin.wait_for_text("Сумма должна быть положительной")
    await admin.send_text(f"/refund {started.payment_id} 1 2 3")
    await admin.wait_for_text("Формат: /refund ПЛАТЁЖ")

    assert await yk.refunds() == []
    assert await _refund_entries(app) == []
    assert (await app.user(TARGET)).balance == 10_000  # type: ignore[union-attr]


async def test_not_an_admin_gets_no_refund(start_bot: StartBot, tg, yk) -> None:
    app = await start_bot(ADMIN_IDS=[ADMIN])
    started = await _paid(app, yk, TARGET, 10_000)
    stranger = tg.user(STRANGER)
    await stranger.send_text(f"/refund {started.payment_id}")
    answer = await stranger.wait_for(lambda m: m.from_bot, 15)
    assert "Возвращено" not in answer.text and "ЮKassa" not in answer.text
    assert await yk.refunds() == []
    assert (await app.user(TARGET)).balance == 10_000  # type: ignore[union-attr]
