"""The safety net for lost YooKassa notifications: which open payments to ask the API about,
and when.

A payment whose notification never came (a firewall, a mistyped webhook URL, a long outage)
is settled anyway: a worker's maintenance pass (:mod:`workers.payment_checks`) asks the API
about every open payment (pending or waiting for capture, with a YooKassa id) once it is
PAYMENT_RECHECK_AFTER_SECONDS old, and settles it through
:func:`billing.payments.reconcile_payment` — the webhook's own once-only path, so the money
moves at most once however the pass, the webhook and "Проверить оплату" meet.

This module is the schedule, per payment, in the payment's row:

- :func:`due`: open payments whose next check has come (never asked: once old enough);
- :func:`claim`: one conditional UPDATE takes the check before the API is called — it counts
  it and moves ``next_check_at`` on, ``WHERE checks`` is still what was read: of two passes
  one wins, the other does not ask the API about that payment;
- :func:`next_check`: the back-off. The wait doubles from PAYMENT_RECHECK_AFTER_SECONDS
  (at most :data:`MAX_INTERVAL`) and never passes the payment's expiry (YooKassa cancels a
  payment nobody paid for; then its API says canceled): the check made at or past the expiry
  is the last one (``next_check_at`` NULL with ``checks`` > 0).

Nothing here touches a balance or the ledger; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing.models import Payment, PaymentStatus
from billing.settings import Settings

# The longest wait between two checks of one payment.
MAX_INTERVAL = timedelta(hours=3)
# How long YooKassa holds the money of a payment waiting for capture (a card: 7 days) before
# it cancels the payment. Media Lab's payments capture at once; this is for one that did not.
WAITING_FOR_CAPTURE_LIFETIME = timedelta(days=7)
OPEN = (PaymentStatus.PENDING.value, PaymentStatus.WAITING_FOR_CAPTURE.value)


@dataclass(frozen=True)
class DueCheck:
    payment_id: int
    status: str
    created_at: datetime
    checks: int  # as read: the claim's condition
    next_check_at: datetime | None


def as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # SQLite


def expires_at(check: DueCheck, settings: Settings) -> datetime:
    """When YooKassa cancels the payment if nobody pays it (waiting for capture: when it
    gives the held money back)."""
    if check.status == PaymentStatus.WAITING_FOR_CAPTURE.value:
        lifetime = WAITING_FOR_CAPTURE_LIFETIME
    else:
        lifetime = timedelta(seconds=settings.PAYMENT_PENDING_EXPIRY_SECONDS)
    return as_utc(check.created_at) + lifetime


def next_check(check: DueCheck, *, now: datetime, settings: Settings) -> datetime | None:
    """When to ask again after the check made ``now``; None: this one is the last."""
    expiry = expires_at(check, settings)
    if now >= expiry:
        return None
    base = settings.PAYMENT_RECHECK_AFTER_SECONDS
    wait = min(timedelta(seconds=base * 2 ** min(check.checks, 40)), MAX_INTERVAL)
    return min(now + wait, expiry)


def _open() -> list:
    return [
        Payment.status.in_(OPEN),
        Payment.credited_at.is_(None),
        Payment.yookassa_payment_id.is_not(None),
    ]


async def due(
    session: AsyncSession, *, now: datetime, settings: Settings, limit: int = 20
) -> list[DueCheck]:
    """Open payments to ask about now: the longest waiting first."""
    old_enough = now - timedelta(seconds=settings.PAYMENT_RECHECK_AFTER_SECONDS)
    rows = await session.execute(
        select(
            Payment.id, Payment.status, Payment.created_at, Payment.checks, Payment.next_check_at
        )
        .where(
            *_open(),
            or_(
                and_(
                    Payment.next_check_at.is_(None),
                    Payment.checks == 0,
                    Payment.created_at <= old_enough,
                ),
                Payment.next_check_at <= now,
            ),
        )
        .order_by(func.coalesce(Payment.next_check_at, Payment.created_at), Payment.id)
        .limit(limit)
    )
    return [DueCheck(*row) for row in rows]


@dataclass(frozen=True)
class Claimed:
    payment_id: int
    check_no: int  # 1 for the first check
    next_check_at: datetime | None  # None: the last check


async def claim(
    session: AsyncSession, check: DueCheck, *, now: datetime, settings: Settings
) -> Claimed | None:
    """Take this check of the payment: count it and schedule the next one, only if no other
    pass did since ``check`` was read and the payment is still open. None: leave it alone.
    The caller commits before it asks the API (a pass that dies then simply asks again at
    the next check)."""
    following = next_check(check, now=now, settings=settings)
    won = await session.execute(
        update(Payment)
        .where(Payment.id == check.payment_id, Payment.checks == check.checks, *_open())
        .values(checks=Payment.checks + 1, next_check_at=following)
        .returning(Payment.id)
    )
    if won.scalar_one_or_none() is None:
        return None
    return Claimed(check.payment_id, check.checks + 1, following)
