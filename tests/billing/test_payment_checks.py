"""The safety net's schedule (billing.payment_checks) on both databases: which open payments
are due, the claim that lets one pass of many ask about a payment, and the back-off up to the
payment's expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from billing import accounts, payment_checks, payments
from billing.models import Payment, PaymentStatus, utcnow
from tests.conftest import make_settings

AFTER = 300
EXPIRY = 3600


def _settings(url: str):  # type: ignore[no-untyped-def]
    return make_settings(
        url, PAYMENT_RECHECK_AFTER_SECONDS=AFTER, PAYMENT_PENDING_EXPIRY_SECONDS=EXPIRY
    )


async def _payment(sessionmaker, *, age: timedelta, yookassa_id: str | None = "yk-1") -> int:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        user, _ = await accounts.get_or_create_user(session, telegram_id=7001, free_operations=0)
        payment = await payments.create_payment(
            session, user_id=user.id, amount=10_000, currency="RUB"
        )
        await session.execute(
            update(Payment)
            .where(Payment.id == payment.id)
            .values(created_at=utcnow() - age, yookassa_payment_id=yookassa_id)
        )
        await session.commit()
        return payment.id


async def _due(sessionmaker, settings, now: datetime) -> list[payment_checks.DueCheck]:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        return await payment_checks.due(session, now=now, settings=settings)


async def test_due_claim_and_back_off(sessionmaker, any_db_url) -> None:
    settings = _settings(any_db_url)
    young = await _payment(sessionmaker, age=timedelta(seconds=AFTER - 30))
    assert await _due(sessionmaker, settings, utcnow()) == []

    now = utcnow() + timedelta(seconds=60)
    [check] = await _due(sessionmaker, settings, now)
    assert (check.payment_id, check.checks, check.next_check_at) == (young, 0, None)

    async with sessionmaker() as session:
        claimed = await payment_checks.claim(session, check, now=now, settings=settings)
        await session.commit()
    assert claimed is not None and claimed.check_no == 1
    assert claimed.next_check_at == now + timedelta(seconds=AFTER)
    # A second pass that read the same row: it does not get the check.
    async with sessionmaker() as session:
        assert await payment_checks.claim(session, check, now=now, settings=settings) is None
        await session.commit()

    assert await _due(sessionmaker, settings, now + timedelta(seconds=AFTER - 1)) == []
    [again] = await _due(sessionmaker, settings, now + timedelta(seconds=AFTER))
    assert again.checks == 1
    later = now + timedelta(seconds=AFTER)
    async with sessionmaker() as session:
        second = await payment_checks.claim(session, again, now=later, settings=settings)
        await session.commit()
    assert second is not None and second.next_check_at == later + timedelta(seconds=2 * AFTER)


async def test_only_open_payments_with_a_yookassa_id_are_due(sessionmaker, any_db_url) -> None:
    settings = _settings(any_db_url)
    old = timedelta(seconds=AFTER + 1)
    never_reached = await _payment(sessionmaker, age=old, yookassa_id=None)
    credited = await _payment(sessionmaker, age=old, yookassa_id="yk-2")
    canceled = await _payment(sessionmaker, age=old, yookassa_id="yk-3")
    waiting = await _payment(sessionmaker, age=old, yookassa_id="yk-4")
    async with sessionmaker() as session:
        await payments.credit_payment(session, payment_id=credited, amount=10_000, currency="RUB")
        await payments.mark_payment_canceled(session, payment_id=canceled, reason="x")
        await payments.mark_payment_waiting(session, payment_id=waiting)
        await session.commit()
    due = await _due(sessionmaker, settings, utcnow())
    assert [(d.payment_id, d.status) for d in due] == [
        (waiting, PaymentStatus.WAITING_FOR_CAPTURE.value)
    ]
    assert never_reached not in [d.payment_id for d in due]


def _check(status: str = "pending", checks: int = 0) -> payment_checks.DueCheck:
    born = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    return payment_checks.DueCheck(1, status, born, checks, None)


def test_the_wait_doubles_is_capped_and_never_passes_the_expiry() -> None:
    settings = make_settings("sqlite://", PAYMENT_RECHECK_AFTER_SECONDS=AFTER)  # expiry: a day
    born = _check().created_at
    now = born + timedelta(seconds=AFTER)
    waits = [
        payment_checks.next_check(_check(checks=n), now=now, settings=settings) - now
        for n in range(8)
    ]
    assert waits[:5] == [timedelta(seconds=AFTER * 2**n) for n in range(5)]
    assert waits[-1] == payment_checks.MAX_INTERVAL
    # Near the expiry: the next check is the expiry itself; at or past it, none.
    expiry = born + timedelta(days=1)
    near = expiry - timedelta(minutes=10)
    assert payment_checks.next_check(_check(checks=9), now=near, settings=settings) == expiry
    assert payment_checks.next_check(_check(checks=9), now=expiry, settings=settings) is None
    # Waiting for capture: YooKassa holds the money up to 7 days.
    assert (
        payment_checks.next_check(_check("waiting_for_capture", 9), now=expiry, settings=settings)
        == expiry + payment_checks.MAX_INTERVAL
    )
