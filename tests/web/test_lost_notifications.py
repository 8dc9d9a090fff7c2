"""The safety net (workers.payment_checks): a payment whose notification never came is
settled by a worker's pass that asks the YooKassa API — through the webhook's own once-only
path, with the webhook's message — backing off per payment up to its expiry.

The emulator never notifies here (auto_notify off, payments marked without a notification):
the lost notification. The web server of the stack is the webhook a late notification meets.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from billing.models import LedgerKind, Payment, PaymentNotice, PaymentStatus, UserPlan, utcnow
from billing.payments import TopUpStarted, start_plan_payment
from tests.web.conftest import Stack
from texts import money_texts
from tg.factory import make_bot
from workers.payment_checks import CheckPassResult, check_open_payments

AFTER = 300.0  # PAYMENT_RECHECK_AFTER_SECONDS
EXPIRY = 3600.0  # PAYMENT_PENDING_EXPIRY_SECONDS


@pytest.fixture
async def net(make_stack) -> AsyncIterator[Stack]:  # type: ignore[no-untyped-def]
    stack = await make_stack(
        PAYMENT_RECHECK_AFTER_SECONDS=AFTER, PAYMENT_PENDING_EXPIRY_SECONDS=EXPIRY
    )
    await stack.yk.configure(auto_notify=False)
    bot = make_bot(stack.settings)
    stack.pass_bot = bot  # type: ignore[attr-defined]
    try:
        yield stack
    finally:
        await bot.session.close()


async def run_pass(stack: Stack, now: datetime, **kw: object) -> CheckPassResult:
    return await check_open_payments(
        stack.sessionmaker,
        stack.gateway,
        stack.pass_bot,  # type: ignore[attr-defined]
        stack.settings,
        now=now,
        **kw,  # type: ignore[arg-type]
    )


async def created_at(stack: Stack, payment_id: int) -> datetime:
    row = await stack.payment_row(payment_id)
    return row.created_at


async def asked(stack: Stack, started: TopUpStarted) -> int:
    """How many times the API was asked about this payment."""
    return len(
        await stack.yk.requests(f"/v3/payments/{started.yookassa_payment_id}", method="GET")
    )


async def test_a_payment_whose_notification_never_came_is_credited_by_the_pass(
    net: Stack,
) -> None:
    user_id, tg_user = await net.new_user(9601)
    started = await net.topup(user_id, amount=30_000)
    await net.yk.mark_succeeded(started.yookassa_payment_id)  # paid; nobody is told

    # Too young: not asked yet.
    young = await run_pass(net, utcnow())
    assert young.asked == {} and await asked(net, started) == 0

    done = await run_pass(net, utcnow() + timedelta(seconds=AFTER + 1))
    assert done.asked == {started.payment_id: "credited"}
    assert [r.outcome for r in done.sent] == ["sent"]
    assert await net.balance(user_id) == 30_000
    assert await net.ledger_count(LedgerKind.TOPUP) == 1
    # The webhook's own words, once.
    message = await tg_user.wait_for_text("пополнен")
    assert message.text == money_texts.credited_text(amount=30_000, balance=30_000, language="ru")
    async with net.sessionmaker() as session:
        notice = await session.scalar(select(PaymentNotice))
    assert (notice.key, notice.outcome) == (f"credited:{started.payment_id}", "sent")

    # Settled: no later pass asks again, and the late notification changes nothing.
    again = await run_pass(net, utcnow() + timedelta(seconds=10 * AFTER))
    assert again.asked == {} and await asked(net, started) == 1
    assert (await net.yk.notify(started.yookassa_payment_id))["status"] == 200
    await net.settle()
    assert await net.balance(user_id) == 30_000
    assert len(await net.sent_texts(9601)) == 1


async def test_a_plan_payment_is_settled_the_same_way(net: Stack) -> None:
    user_id, tg_user = await net.new_user(9602)
    started = await start_plan_payment(
        net.sessionmaker, net.gateway, net.settings, user_id=user_id, plan_code="pack10"
    )
    await net.yk.mark_succeeded(started.yookassa_payment_id)

    done = await run_pass(net, utcnow() + timedelta(seconds=AFTER + 1))
    assert done.asked == {started.payment_id: "credited"}
    message = await tg_user.wait_for_text("подключён")
    assert message.text.startswith("✅ Оплата 80 ₽ получена: пакет «Пакет 10 операций» подключён")
    async with net.sessionmaker() as session:
        holding = await session.scalar(select(UserPlan).where(UserPlan.user_id == user_id))
    assert (holding.units_left, holding.payment_id) == (10, started.payment_id)
    assert await net.balance(user_id) == 0


async def test_the_notification_arriving_during_the_pass_credits_once(net: Stack) -> None:
    users = [await net.new_user(9610 + i) for i in range(6)]
    payments = []
    for user_id, _ in users:
        started = await net.topup(user_id, amount=10_000)
        await net.yk.mark_succeeded(started.yookassa_payment_id)
        payments.append(started)
    later = utcnow() + timedelta(seconds=AFTER + 1)

    # Every payment's notification and two passes, all at once.
    results = await asyncio.gather(
        *(net.yk.notify(p.yookassa_payment_id) for p in payments),
        run_pass(net, later),
        run_pass(net, later),
    )
    assert {r["status"] for r in results[: len(payments)]} == {200}
    await net.settle()
    for (user_id, tg_user), started in zip(users, payments, strict=True):
        assert await net.balance(user_id) == 10_000
        await tg_user.wait_for_text("пополнен")
        assert len(await net.sent_texts(tg_user.user_id)) == 1, started.payment_id
    assert await net.ledger_count(LedgerKind.TOPUP) == len(payments)
    # Each payment asked about by one pass at most (the claim), besides its notification.
    for started in payments:
        assert await asked(net, started) <= 2
    passes: list[CheckPassResult] = results[len(payments) :]  # type: ignore[assignment]
    assert not set(passes[0].asked) & set(passes[1].asked)


async def test_two_passes_at_once_ask_about_each_payment_once(net: Stack) -> None:
    user_id, _ = await net.new_user(9620)
    pending = [await net.topup(user_id, amount=10_000) for _ in range(5)]
    later = utcnow() + timedelta(seconds=AFTER + 1)
    first, second = await asyncio.gather(run_pass(net, later), run_pass(net, later))
    assert sorted([*first.asked, *second.asked]) == sorted(p.payment_id for p in pending)
    for started in pending:
        assert await asked(net, started) == 1
        row = await net.payment_row(started.payment_id)
        assert (row.status, row.checks) == ("pending", 1)


async def test_a_canceled_payment_is_found_by_the_pass(net: Stack) -> None:
    user_id, tg_user = await net.new_user(9630, language="en")
    started = await net.topup(user_id, amount=10_000)
    await net.yk.mark_canceled(started.yookassa_payment_id, "insufficient_funds")

    done = await run_pass(net, utcnow() + timedelta(seconds=AFTER + 1))
    assert done.asked == {started.payment_id: "canceled"}
    row = await net.payment_row(started.payment_id)
    assert (row.status, row.cancellation_reason) == ("canceled", "insufficient_funds")
    message = await tg_user.wait_for_text("did not go through")
    assert message.text == money_texts.canceled_text(
        amount=10_000, reason="insufficient_funds", language="en"
    )
    assert await net.balance(user_id) == 0
    # Canceled is final: never asked again.
    assert (await run_pass(net, utcnow() + timedelta(seconds=EXPIRY))).asked == {}
    assert await asked(net, started) == 1


async def test_the_pass_backs_off_per_payment(net: Stack) -> None:
    user_id, _ = await net.new_user(9640)
    started = await net.topup(user_id, amount=10_000)  # nobody pays it
    born = await created_at(net, started.payment_id)

    first = born + timedelta(seconds=AFTER + 1)
    assert (await run_pass(net, first)).asked == {started.payment_id: "pending"}
    row = await net.payment_row(started.payment_id)
    assert row.checks == 1
    gap1 = row.next_check_at - first
    assert timedelta(seconds=AFTER) <= gap1 < timedelta(seconds=AFTER + 60)

    # Before its next check: not asked, however many passes run.
    for seconds in (1, AFTER / 2, AFTER - 60):
        assert (await run_pass(net, first + timedelta(seconds=seconds))).asked == {}
    assert await asked(net, started) == 1

    second = row.next_check_at + timedelta(seconds=1)
    assert (await run_pass(net, second)).asked == {started.payment_id: "pending"}
    row = await net.payment_row(started.payment_id)
    gap2 = row.next_check_at - second
    assert timedelta(seconds=2 * AFTER) <= gap2 < timedelta(seconds=2 * AFTER + 60)
    assert (await run_pass(net, second + gap2 / 2)).asked == {}
    assert await asked(net, started) == 2

    # Paid meanwhile: the next check credits it.
    await net.yk.mark_succeeded(started.yookassa_payment_id)
    third = row.next_check_at + timedelta(seconds=1)
    assert (await run_pass(net, third)).asked == {started.payment_id: "credited"}
    assert await net.balance(user_id) == 10_000


async def test_a_payment_past_its_expiry_is_asked_once_more_then_never(net: Stack) -> None:
    user_id, tg_user = await net.new_user(9650)
    started = await net.topup(user_id, amount=10_000)
    born = await created_at(net, started.payment_id)

    # The checks never go past the expiry: the last one is made right at it.
    moment = born + timedelta(seconds=AFTER + 1)
    for _ in range(20):
        done = await run_pass(net, moment)
        assert done.asked == {started.payment_id: "pending"}
        row = await net.payment_row(started.payment_id)
        if row.next_check_at is None:
            break
        assert row.next_check_at <= born + timedelta(seconds=EXPIRY)
        moment = row.next_check_at + timedelta(seconds=1)
    assert row.next_check_at is None and moment > born + timedelta(seconds=EXPIRY)
    checks = row.checks
    assert checks == await asked(net, started) < 10

    # Past the expiry: never asked again.
    assert (await run_pass(net, born + timedelta(days=30))).asked == {}
    assert await asked(net, started) == checks
    # A notification still settles it (the pass only stopped asking).
    await net.yk.mark_succeeded(started.yookassa_payment_id, force=True)
    assert (await net.yk.notify(started.yookassa_payment_id))["status"] == 200
    assert await net.balance(user_id) == 10_000


async def test_a_payment_never_asked_before_its_expiry_is_asked_once(net: Stack) -> None:
    """Workers down all day: the payment is asked about once, however late."""
    user_id, _ = await net.new_user(9655)
    started = await net.topup(user_id, amount=10_000)
    await net.yk.mark_succeeded(started.yookassa_payment_id)
    born = await created_at(net, started.payment_id)
    done = await run_pass(net, born + timedelta(days=3))
    assert done.asked == {started.payment_id: "credited"}
    assert await net.balance(user_id) == 10_000


async def test_yookassa_unavailable_stops_the_pass_and_the_next_one_settles(net: Stack) -> None:
    user_id, tg_user = await net.new_user(9660)
    payments = [await net.topup(user_id, amount=10_000) for _ in range(3)]
    for started in payments:
        await net.yk.mark_succeeded(started.yookassa_payment_id)
    await net.yk.fail_next(1, only="get", status=500)
    later = utcnow() + timedelta(seconds=AFTER + 1)

    stopped = await run_pass(net, later)
    assert stopped.unavailable and stopped.asked == {} and len(stopped.failed) == 1
    assert await net.balance(user_id) == 0
    asks = [await asked(net, p) for p in payments]
    assert sorted(asks) == [0, 0, 1]  # one asked, the rest left for the next pass

    # The next pass: the two never asked at once, the failed one at its next check.
    await run_pass(net, later + timedelta(seconds=1))
    assert await net.balance(user_id) == 20_000
    await run_pass(net, later + timedelta(seconds=AFTER + 2))
    assert await net.balance(user_id) == 30_000
    assert await net.ledger_count(LedgerKind.TOPUP) == 3
    await tg_user.wait_for_text("300 ₽")


async def test_a_waiting_for_capture_payment_is_asked_about_too(net: Stack) -> None:
    user_id, _ = await net.new_user(9670)
    started = await net.topup(user_id, amount=10_000)
    await net.yk.mark_waiting_for_capture(started.yookassa_payment_id)
    done = await run_pass(net, utcnow() + timedelta(seconds=AFTER + 1))
    assert done.asked == {started.payment_id: "waiting_for_capture"}
    row = await net.payment_row(started.payment_id)
    assert (row.status, row.checks) == (PaymentStatus.WAITING_FOR_CAPTURE, 1)
    assert row.next_check_at is not None
    # Captured later: the next check credits it.
    await net.yk.mark_succeeded(started.yookassa_payment_id)
    done = await run_pass(net, row.next_check_at + timedelta(seconds=1))
    assert done.asked == {started.payment_id: "credited"}
    assert await net.balance(user_id) == 10_000


async def test_a_payment_that_never_reached_yookassa_is_not_asked_about(net: Stack) -> None:
    user_id, _ = await net.new_user(9680)
    started = await net.topup(user_id, amount=10_000)
    async with net.sessionmaker() as session:  # as if the create call never answered
        await session.execute(
            update(Payment)
            .where(Payment.id == started.payment_id)
            .values(yookassa_payment_id=None, status="failed")
        )
        await session.commit()
    assert (await run_pass(net, utcnow() + timedelta(seconds=AFTER + 1))).asked == {}
    assert await asked(net, started) == 0
