"""The operator's figures (/stats in the bot, ``python -m billing stats``): users, revenue by
way of payment and by day, operations by type, open payments, money owed. Read only.

Days are calendar days of the operator's clock (BOT_TIMEZONE): "today" runs from the local
midnight, "7 days" and "30 days" are the last 7 and 30 local days including today, so the
7-day figure is the sum of the per-day rows. Bounds are computed here in UTC and compared in
SQL, so the same queries run on PostgreSQL and SQLite (which stores UTC without a zone).

Revenue is read from the ledger, the one record of money moved: a payment's credit (its
``topup`` entry) counts on the day it was credited, a refund to the card or in Stars (its
``payment_refund`` entry) on the day it was debited; net = credited - refunded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from fractions import Fraction

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing.models import (
    LedgerEntry,
    LedgerKind,
    Operation,
    OperationStatus,
    Payment,
    PaymentProvider,
    PaymentStatus,
    User,
    utcnow,
)

DAYS_BY_DAY = 7  # the per-day rows
WEEK_DAYS = 7
MONTH_DAYS = 30
OPEN_PAYMENTS = (PaymentStatus.PENDING.value, PaymentStatus.WAITING_FOR_CAPTURE.value)
METHODS = tuple(p.value for p in PaymentProvider)


@dataclass(frozen=True)
class Money:
    """Payments credited and refunded in a span of days (kopecks)."""

    credited: int = 0
    refunded: int = 0  # returned to the payer (a positive number)
    payments: int = 0  # credits counted
    refunds: int = 0  # refunds counted

    @property
    def net(self) -> int:
        return self.credited - self.refunded

    def __add__(self, other: Money) -> Money:
        return Money(
            self.credited + other.credited,
            self.refunded + other.refunded,
            self.payments + other.payments,
            self.refunds + other.refunds,
        )


@dataclass(frozen=True)
class MethodRevenue:
    method: str  # payments.provider: yookassa, stars
    today: Money
    week: Money
    month: Money


@dataclass(frozen=True)
class DayRevenue:
    day: date  # a local date
    by_method: dict[str, Money]  # every method, in METHODS order

    @property
    def total(self) -> Money:
        return sum(self.by_method.values(), Money())


@dataclass(frozen=True)
class OperationFigures:
    """Operations of one type asked for in the last 7 days."""

    type: str
    count: int
    succeeded: int
    failed: int  # failed with nothing to give back (a type that cost nothing)
    refunded: int  # failed, its charge given back
    running: int  # queued or running: no outcome yet

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed + self.refunded

    @property
    def failure_rate(self) -> Fraction | None:
        """Failed (refunded or not) of those with an outcome; None when none has one yet
        (operations still running would make the rate look better than it is)."""
        return Fraction(self.failed + self.refunded, self.finished) if self.finished else None

    @property
    def refund_rate(self) -> Fraction | None:
        """Refunded of those with an outcome."""
        return Fraction(self.refunded, self.finished) if self.finished else None


@dataclass(frozen=True)
class OpenPayments:
    """Payments created and neither paid nor canceled yet, of one method."""

    method: str
    count: int
    amount: int  # kopecks they would credit
    oldest_at: datetime | None  # UTC

    def oldest_age(self, now: datetime) -> timedelta | None:
        return None if self.oldest_at is None else max(now - self.oldest_at, timedelta(0))


@dataclass(frozen=True)
class Stats:
    now: datetime  # UTC
    zone: tzinfo  # the zone the days are counted in (BOT_TIMEZONE)
    today: date  # the local date of ``now``
    users_total: int
    users_today: int
    users_week: int
    revenue: list[MethodRevenue]  # every method, in METHODS order
    days: list[DayRevenue]  # the last 7 local days, oldest first, today last
    operations: list[OperationFigures]  # by type, the most asked for first
    pending: list[OpenPayments]  # every method, in METHODS order
    debtors: int  # users whose balance is below zero (a refund of money already spent)
    debt: int  # what they owe, kopecks (a positive number)

    def revenue_total(self, span: str) -> Money:
        """The sum over methods of ``today``, ``week`` or ``month``."""
        return sum((getattr(r, span) for r in self.revenue), Money())

    @property
    def pending_count(self) -> int:
        return sum(p.count for p in self.pending)

    @property
    def pending_amount(self) -> int:
        return sum(p.amount for p in self.pending)


def table(rows: Sequence[Sequence[str]], *, gap: int = 2) -> list[str]:
    """Rows as the lines of a monospace table: the first column left-aligned, the others
    (figures) right-aligned, ``gap`` spaces apart. Shared by /stats and the CLI."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))] if rows else []
    return [
        (" " * gap)
        .join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
            for i, cell in enumerate(row)
        )
        .rstrip()
        for row in rows
    ]


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # SQLite


def day_bounds(now: datetime, zone: tzinfo, days: int) -> list[datetime]:
    """The UTC starts of the last ``days`` local days and the end of today: days + 1 bounds.
    Each is a local midnight (a zone's own offset that day, so a DST change is respected)."""
    today = now.astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    return [
        datetime.combine(first + timedelta(days=i), time(), tzinfo=zone).astimezone(UTC)
        for i in range(days + 1)
    ]


async def collect(session: AsyncSession, *, zone: tzinfo, now: datetime | None = None) -> Stats:
    """Every figure, read in the caller's session (nothing written, nothing committed)."""
    now = _as_utc(now or utcnow()).astimezone(UTC)
    month = day_bounds(now, zone, MONTH_DAYS)
    end = month[-1]  # the end of today: a row stamped later (clock skew) is left out
    by_day = month[-DAYS_BY_DAY - 1 :]
    today_start, week_start, month_start = month[-2], month[-WEEK_DAYS - 1], month[0]

    users_total, users_today, users_week = (
        await session.execute(
            select(
                func.count(),
                _count_in(User.created_at, today_start, end),
                _count_in(User.created_at, week_start, end),
            ).select_from(User)
        )
    ).one()

    revenue, days = await _revenue(
        session, zone, by_day, today_start, week_start, month_start, end
    )
    operations = await _operations(session, week_start, end)
    pending = await _pending(session)
    debtors, debt = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(-User.balance), 0)).where(User.balance < 0)
        )
    ).one()
    return Stats(
        now=now,
        zone=zone,
        today=now.astimezone(zone).date(),
        users_total=int(users_total),
        users_today=int(users_today or 0),
        users_week=int(users_week or 0),
        revenue=revenue,
        days=days,
        operations=operations,
        pending=pending,
        debtors=int(debtors),
        debt=int(debt),
    )


def _in(column, start: datetime, end: datetime):  # type: ignore[no-untyped-def]
    return and_(column >= start, column < end)


def _count_in(column, start: datetime, end: datetime):  # type: ignore[no-untyped-def]
    return func.coalesce(func.sum(case((_in(column, start, end), 1), else_=0)), 0)


def _sum_in(column, amount, start: datetime, end: datetime):  # type: ignore[no-untyped-def]
    return func.coalesce(func.sum(case((_in(column, start, end), amount), else_=0)), 0)


async def _revenue(
    session: AsyncSession,
    zone: tzinfo,
    by_day: list[datetime],
    today_start: datetime,
    week_start: datetime,
    month_start: datetime,
    end: datetime,
) -> tuple[list[MethodRevenue], list[DayRevenue]]:
    """One pass over the last 30 days' credits and refunds, summed per span in SQL."""
    spans = [(today_start, end), (week_start, end), (month_start, end)]
    spans += list(zip(by_day, by_day[1:], strict=False))
    at, amount = LedgerEntry.created_at, func.abs(LedgerEntry.amount)
    columns = []
    for start, stop in spans:
        columns += [_sum_in(at, amount, start, stop), _count_in(at, start, stop)]
    rows = await session.execute(
        select(Payment.provider, LedgerEntry.kind, *columns)
        .join(Payment, Payment.id == LedgerEntry.payment_id)
        .where(
            LedgerEntry.kind.in_([LedgerKind.TOPUP.value, LedgerKind.PAYMENT_REFUND.value]),
            _in(at, month_start, end),
        )
        .group_by(Payment.provider, LedgerEntry.kind)
    )
    # figures[method][span] = Money
    figures = {m: [Money() for _ in spans] for m in METHODS}
    for provider, kind, *sums in rows:
        per_span = figures.setdefault(provider, [Money() for _ in spans])
        for i in range(len(spans)):
            total, count = int(sums[2 * i]), int(sums[2 * i + 1])
            if kind == LedgerKind.TOPUP.value:
                per_span[i] += Money(credited=total, payments=count)
            else:
                per_span[i] += Money(refunded=total, refunds=count)
    revenue = [MethodRevenue(m, *figures[m][:3]) for m in figures]
    days = [
        DayRevenue(
            day=start.astimezone(zone).date(),
            by_method={m: figures[m][3 + i] for m in figures},
        )
        for i, start in enumerate(by_day[:-1])
    ]
    return revenue, days


async def _operations(
    session: AsyncSession, week_start: datetime, end: datetime
) -> list[OperationFigures]:
    status = Operation.status
    rows = await session.execute(
        select(
            Operation.type,
            func.count(),
            func.sum(case((status == OperationStatus.SUCCEEDED.value, 1), else_=0)),
            func.sum(case((status == OperationStatus.FAILED.value, 1), else_=0)),
            func.sum(case((status == OperationStatus.REFUNDED.value, 1), else_=0)),
        )
        .where(_in(Operation.created_at, week_start, end))
        .group_by(Operation.type)
    )
    figures = [
        OperationFigures(
            type=kind,
            count=int(count),
            succeeded=int(ok),
            failed=int(failed),
            refunded=int(refunded),
            running=int(count) - int(ok) - int(failed) - int(refunded),
        )
        for kind, count, ok, failed, refunded in rows
    ]
    return sorted(figures, key=lambda f: (-f.count, f.type))


async def _pending(session: AsyncSession) -> list[OpenPayments]:
    rows = await session.execute(
        select(
            Payment.provider,
            func.count(),
            func.coalesce(func.sum(Payment.amount), 0),
            func.min(Payment.created_at),
        )
        .where(Payment.status.in_(OPEN_PAYMENTS), Payment.credited_at.is_(None))
        .group_by(Payment.provider)
    )
    found = {
        provider: OpenPayments(provider, int(n), int(amount), _as_utc(oldest) if oldest else None)
        for provider, n, amount, oldest in rows
    }
    methods = list(METHODS) + sorted(set(found) - set(METHODS))
    return [found.get(m, OpenPayments(m, 0, 0, None)) for m in methods]
