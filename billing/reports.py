"""Read-only figures of one user and of the payments, for the operator API (web/api).

* :func:`usage` — a user's operations in a period, by type and source: how many, in which
  state, the units and kopecks they took (a refunded one took nothing in the end).
* :func:`free_renews_at` — when the free operations are next topped back up.
* :func:`payments_page` — the payments, newest first, a page at a time, by status.

Nothing here writes and nothing here rolls a period over: what a user holds is
``billing.wallet.wallet``; these are the rest of what seed 004's API reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing.models import LedgerEntry, Operation, OperationStatus, Payment, Plan, User
from billing.settings import Settings


def _aware(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back (stored in UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class UsageRow:
    op_type: str
    funding: str  # the source the operations spent from (billing.models.Funding)
    operations: int
    succeeded: int
    refunded: int  # failed and given back (to the same source)
    failed: int  # failed with nothing to give back (a free-of-charge type)
    in_progress: int  # queued or running
    units: int  # units taken and kept (refunded operations left out)
    kopecks: int  # money taken and kept from the balance (refunded ones left out)
    period: str | None = None  # grouped by day ("2026-12-07") or month ("2026-12"): which


PERIOD_FORMATS = {"day": "%Y-%m-%d", "month": "%Y-%m"}


async def usage(
    session: AsyncSession,
    *,
    user_id: int,
    since: datetime,
    until: datetime,
    group: str | None = None,
    tz: tzinfo = UTC,
) -> list[UsageRow]:
    """The user's operations created in [since, until), by type and source; with ``group``
    ("day" or "month") also by the day or month of ``tz`` (BOT_TIMEZONE) they were created
    in, oldest period first."""
    if group is not None:
        return await _usage_by_period(
            session, user_id=user_id, since=since, until=until, fmt=PERIOD_FORMATS[group], tz=tz
        )
    kept = Operation.status != OperationStatus.REFUNDED.value

    def count(status: OperationStatus | tuple[OperationStatus, ...]):  # type: ignore[no-untyped-def]
        statuses = (status,) if isinstance(status, OperationStatus) else status
        return func.coalesce(
            func.sum(case((Operation.status.in_([s.value for s in statuses]), 1), else_=0)), 0
        )

    rows = (
        await session.execute(
            select(
                Operation.type,
                Operation.funding,
                func.count().label("operations"),
                count(OperationStatus.SUCCEEDED).label("succeeded"),
                count(OperationStatus.REFUNDED).label("refunded"),
                count(OperationStatus.FAILED).label("failed"),
                count((OperationStatus.QUEUED, OperationStatus.RUNNING)).label("in_progress"),
                func.coalesce(func.sum(case((kept, Operation.units), else_=0)), 0).label("units"),
                func.coalesce(
                    func.sum(
                        case((kept & (Operation.funding == "balance"), Operation.price), else_=0)
                    ),
                    0,
                ).label("kopecks"),
            )
            .where(
                Operation.user_id == user_id,
                Operation.created_at >= since,
                Operation.created_at < until,
            )
            .group_by(Operation.type, Operation.funding)
            .order_by(Operation.type, Operation.funding)
        )
    ).all()
    return [
        UsageRow(
            op_type=r.type,
            funding=r.funding,
            operations=int(r.operations),
            succeeded=int(r.succeeded),
            refunded=int(r.refunded),
            failed=int(r.failed),
            in_progress=int(r.in_progress),
            units=int(r.units),
            kopecks=int(r.kopecks),
        )
        for r in rows
    ]


async def _usage_by_period(
    session: AsyncSession, *, user_id: int, since: datetime, until: datetime, fmt: str, tz: tzinfo
) -> list[UsageRow]:
    # Summed here, not in SQL: a local calendar day is the same on both databases this way
    # (SQLite has no time zones), and one user's operations in a period are few.
    rows = await session.execute(
        select(
            Operation.type,
            Operation.funding,
            Operation.status,
            Operation.units,
            Operation.price,
            Operation.created_at,
        ).where(
            Operation.user_id == user_id,
            Operation.created_at >= since,
            Operation.created_at < until,
        )
    )
    sums: dict[tuple[str, str, str], list[int]] = {}
    for r in rows:
        key = (_aware(r.created_at).astimezone(tz).strftime(fmt), r.type, r.funding)
        acc = sums.setdefault(key, [0] * 7)
        status = OperationStatus(r.status)
        acc[0] += 1
        acc[1] += status is OperationStatus.SUCCEEDED
        acc[2] += status is OperationStatus.REFUNDED
        acc[3] += status is OperationStatus.FAILED
        acc[4] += status in (OperationStatus.QUEUED, OperationStatus.RUNNING)
        if status is not OperationStatus.REFUNDED:
            acc[5] += r.units
            acc[6] += r.price if r.funding == "balance" else 0
    return [
        UsageRow(
            op_type=op_type,
            funding=funding,
            operations=a[0],
            succeeded=a[1],
            refunded=a[2],
            failed=a[3],
            in_progress=a[4],
            units=a[5],
            kopecks=a[6],
            period=period,
        )
        for (period, op_type, funding), a in sorted(sums.items())
    ]


async def free_renews_at(
    session: AsyncSession, settings: Settings, *, user_id: int, now: datetime
) -> datetime | None:
    """When the free operations are next topped back up to FREE_OPERATIONS_COUNT: the
    start of the next FREE_OPERATIONS_RENEW_DAYS period after signup (the periods
    ``billing.plans.roll_over`` renews by); None when they never renew."""
    days = settings.FREE_OPERATIONS_RENEW_DAYS
    if not days:
        return None
    created = await session.scalar(select(User.created_at).where(User.id == user_id))
    if created is None:
        return None
    created = _aware(created)
    span = timedelta(days=days)
    return created + ((now - created) // span + 1) * span


@dataclass(frozen=True)
class PaymentRow:
    id: int
    telegram_id: int
    provider: str
    status: str
    amount: int  # kopecks it credits
    currency: str
    stars: int | None
    refunded_amount: int
    provider_payment_id: str | None  # YooKassa's payment id or Telegram's charge id
    plan_code: str | None  # the plan a Stars payment buys
    created_at: datetime
    credited_at: datetime | None


async def payments_page(
    session: AsyncSession,
    *,
    status: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[PaymentRow]:
    """Up to ``limit`` payments older than ``before_id`` (all, with None), newest first."""
    query = (
        select(
            Payment.id,
            User.telegram_id,
            Payment.provider,
            Payment.status,
            Payment.amount,
            Payment.currency,
            Payment.stars,
            Payment.refunded_amount,
            func.coalesce(Payment.yookassa_payment_id, Payment.telegram_charge_id).label(
                "provider_payment_id"
            ),
            Plan.code.label("plan_code"),
            Payment.created_at,
            Payment.credited_at,
        )
        .join(User, User.id == Payment.user_id)
        .outerjoin(Plan, Plan.id == Payment.plan_id)
        .order_by(Payment.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(Payment.status == status)
    if before_id is not None:
        query = query.where(Payment.id < before_id)
    return [
        PaymentRow(
            id=r.id,
            telegram_id=r.telegram_id,
            provider=r.provider,
            status=r.status,
            amount=r.amount,
            currency=r.currency,
            stars=r.stars,
            refunded_amount=r.refunded_amount,
            provider_payment_id=r.provider_payment_id,
            plan_code=r.plan_code,
            created_at=_aware(r.created_at),
            credited_at=_aware(r.credited_at) if r.credited_at is not None else None,
        )
        for r in (await session.execute(query)).all()
    ]


@dataclass(frozen=True)
class KeyedEntry:
    """The ledger entry an idempotency key wrote (an operator's keyed adjustment)."""

    id: int
    user_id: int
    kind: str
    amount: int
    free_delta: int
    balance_after: int
    reason: str | None
    created_at: datetime


async def entry_by_key(session: AsyncSession, key: str) -> KeyedEntry | None:
    """The ledger entry with this idempotency key, if any."""
    row = (
        await session.execute(
            select(
                LedgerEntry.id,
                LedgerEntry.user_id,
                LedgerEntry.kind,
                LedgerEntry.amount,
                LedgerEntry.free_delta,
                LedgerEntry.balance_after,
                LedgerEntry.reason,
                LedgerEntry.created_at,
            ).where(LedgerEntry.idempotency_key == key)
        )
    ).one_or_none()
    if row is None:
        return None
    return KeyedEntry(
        id=row.id,
        user_id=row.user_id,
        kind=row.kind,
        amount=row.amount,
        free_delta=row.free_delta,
        balance_after=row.balance_after,
        reason=row.reason,
        created_at=_aware(row.created_at),
    )
