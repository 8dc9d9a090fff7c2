"""The ledger audit: every balance equals the sum of its entries, nothing happened twice."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing.models import (
    Funding,
    HoldingStatus,
    LedgerEntry,
    LedgerKind,
    Operation,
    OperationStatus,
    Payment,
    PaymentRefund,
    RefundStatus,
    User,
    UserPlan,
)

# Why a refund of units moved nothing (billing.operations: PERIOD_OVER, PLAN_ENDED).
NOT_CARRIED = ("period_over", "plan_ended")
PLAN_FUNDED = (Funding.SUBSCRIPTION.value, Funding.PACKAGE.value)

# The audit's statements take no parameters: each is built once per process (``@cache``)
# and run again as it is. Building them (the aliases, subqueries and conditions) took ~20 ms
# of CPU per audit, more than running them on a small database; the test suite audits the
# ledger after every test, some 1 500 times a run.


@cache
def _accounts_vs_ledger() -> Any:
    """Each user's balance and free operations, with the sums of its ledger entries."""
    sums = (
        select(
            LedgerEntry.user_id.label("user_id"),
            func.sum(LedgerEntry.amount).label("amount"),
            func.sum(LedgerEntry.free_delta).label("free"),
            func.max(LedgerEntry.id).label("last_id"),
        )
        .group_by(LedgerEntry.user_id)
        .subquery()
    )
    return select(
        User.id,
        User.balance,
        User.free_operations_left,
        func.coalesce(sums.c.amount, 0),
        func.coalesce(sums.c.free, 0),
        sums.c.last_id,
    ).outerjoin(sums, sums.c.user_id == User.id)


@cache
def _entries_twice() -> Any:
    return (
        select(LedgerEntry.operation_id, LedgerEntry.kind, func.count())
        .where(LedgerEntry.operation_id.is_not(None))
        .group_by(LedgerEntry.operation_id, LedgerEntry.kind)
        .having(func.count() > 1)
    )


@cache
def _operation_entries() -> tuple[Any, Any]:
    """(operations whose charge and refund entries do not match their funding and status,
    delivered operations that were also refunded)."""
    charged = (
        select(func.count())
        .where(
            LedgerEntry.operation_id == Operation.id, LedgerEntry.kind == LedgerKind.CHARGE.value
        )
        .scalar_subquery()
    )
    refunded = (
        select(func.count())
        .where(
            LedgerEntry.operation_id == Operation.id, LedgerEntry.kind == LedgerKind.REFUND.value
        )
        .scalar_subquery()
    )
    ops = select(Operation.id, Operation.status, Operation.funding, charged, refunded).where(
        or_(
            and_(Operation.funding != Funding.NONE.value, charged != 1),
            and_(Operation.funding == Funding.NONE.value, charged != 0),
            and_(Operation.status == OperationStatus.REFUNDED.value, refunded != 1),
            and_(Operation.status != OperationStatus.REFUNDED.value, refunded != 0),
        )
    )
    both = select(Operation.id, Operation.status, Operation.delivered_at, refunded).where(
        Operation.delivered_at.is_not(None),
        or_(Operation.status == OperationStatus.REFUNDED.value, refunded > 0),
    )
    return ops, both


@cache
def _charges_vs_refunds() -> Any:
    charge_e = LedgerEntry.__table__.alias("charge_e")
    refund_e = LedgerEntry.__table__.alias("refund_e")
    return (
        select(
            Operation.id,
            Operation.price,
            Operation.funding,
            charge_e.c.amount,
            charge_e.c.free_delta,
            refund_e.c.amount,
            refund_e.c.free_delta,
            charge_e.c.units_delta,
            refund_e.c.units_delta,
        )
        .join(
            charge_e,
            and_(
                charge_e.c.operation_id == Operation.id,
                charge_e.c.kind == LedgerKind.CHARGE.value,
            ),
        )
        .outerjoin(
            refund_e,
            and_(
                refund_e.c.operation_id == Operation.id,
                refund_e.c.kind == LedgerKind.REFUND.value,
            ),
        )
        .where(
            or_(
                charge_e.c.amount != -Operation.price,
                and_(Operation.funding == Funding.FREE.value, charge_e.c.free_delta != -1),
                and_(Operation.funding == Funding.BALANCE.value, charge_e.c.free_delta != 0),
                refund_e.c.amount != -charge_e.c.amount,
                refund_e.c.free_delta != -charge_e.c.free_delta,
                # Units go back to their holding, or nothing with the reason why not.
                and_(
                    refund_e.c.id.is_not(None),
                    or_(
                        refund_e.c.holding_id.is_distinct_from(charge_e.c.holding_id),
                        and_(
                            refund_e.c.units_delta != -charge_e.c.units_delta,
                            or_(
                                refund_e.c.units_delta != 0,
                                refund_e.c.reason.is_(None),
                                refund_e.c.reason.not_in(NOT_CARRIED),
                            ),
                        ),
                    ),
                ),
            )
        )
    )


@cache
def _failed_but_paid() -> Any:
    return select(Operation.id).where(
        Operation.status == OperationStatus.FAILED.value,
        Operation.funding != Funding.NONE.value,
    )


@cache
def _card_refunds_vs_debits() -> Any:
    debits = (
        select(
            LedgerEntry.payment_id.label("payment_id"),
            func.sum(LedgerEntry.amount).label("amount"),
        )
        .where(LedgerEntry.kind == LedgerKind.PAYMENT_REFUND.value)
        .group_by(LedgerEntry.payment_id)
        .subquery()
    )
    return (
        select(Payment.id, Payment.refunded_amount, func.coalesce(debits.c.amount, 0))
        .outerjoin(debits, debits.c.payment_id == Payment.id)
        .where(Payment.refunded_amount != -func.coalesce(debits.c.amount, 0))
    )


@cache
def _undebited_refunds() -> Any:
    return (
        select(PaymentRefund.id, PaymentRefund.payment_id, PaymentRefund.yookassa_refund_id)
        .outerjoin(
            LedgerEntry,
            LedgerEntry.idempotency_key == "payment_refund:" + PaymentRefund.yookassa_refund_id,
        )
        .where(
            PaymentRefund.status == RefundStatus.SUCCEEDED.value,
            or_(PaymentRefund.yookassa_refund_id.is_(None), LedgerEntry.id.is_(None)),
        )
    )


@cache
def _payments_vs_topups() -> Any:
    topups = (
        select(
            LedgerEntry.payment_id.label("payment_id"),
            func.count().label("n"),
            func.sum(LedgerEntry.amount).label("amount"),
        )
        .where(LedgerEntry.kind == LedgerKind.TOPUP.value)
        .group_by(LedgerEntry.payment_id)
        .subquery()
    )
    return select(
        Payment.id,
        Payment.status,
        Payment.amount,
        Payment.credited_at,
        func.coalesce(topups.c.n, 0),
        topups.c.amount,
    ).outerjoin(topups, topups.c.payment_id == Payment.id)


@cache
def _orphan_topups() -> Any:
    return (
        select(func.count())
        .select_from(LedgerEntry)
        .where(LedgerEntry.kind == LedgerKind.TOPUP.value, LedgerEntry.payment_id.is_(None))
    )


async def audit(session: AsyncSession) -> list[str]:
    """Return one line per problem found; an empty list means the books are clean."""
    problems: list[str] = []

    rows = await session.execute(_accounts_vs_ledger())
    last_ids: dict[int, tuple[int, int]] = {}
    for user_id, balance, free_left, amount, free, last_id in rows:
        if balance != amount:
            problems.append(f"user {user_id}: balance {balance} != ledger sum {amount}")
        if free_left != free:
            problems.append(f"user {user_id}: free operations {free_left} != ledger sum {free}")
        if last_id is not None:
            last_ids[last_id] = (user_id, balance, free_left)
    if last_ids:
        lasts = await session.execute(
            select(LedgerEntry.id, LedgerEntry.balance_after, LedgerEntry.free_after).where(
                LedgerEntry.id.in_(list(last_ids))
            )
        )
        for entry_id, balance_after, free_after in lasts:
            user_id, balance, free_left = last_ids[entry_id]
            if (balance_after, free_after) != (balance, free_left):
                problems.append(
                    f"user {user_id}: last entry {entry_id} says balance {balance_after} / "
                    f"free {free_after}, the account says {balance} / {free_left}"
                )

    # Each operation charged at most once and refunded at most once.
    twice = await session.execute(_entries_twice())
    for operation_id, kind, count in twice:
        problems.append(f"operation {operation_id}: {count} {kind} entries")

    ops_statement, both_statement = _operation_entries()
    ops = await session.execute(ops_statement)
    for operation_id, status, funding, n_charged, n_refunded in ops:
        problems.append(
            f"operation {operation_id} ({status}, {funding}): {n_charged} charge and "
            f"{n_refunded} refund entries"
        )

    problems += await _charges_and_sources(session)
    problems += await _holdings(session)

    # A charge takes the operation's price (or one free operation), a refund gives back
    # exactly what its charge took, and a paid operation never ends "failed" (that status is
    # for operations that cost nothing).
    wrong = await session.execute(_charges_vs_refunds())
    for op_id, price, funding, c_amount, c_free, r_amount, r_free, c_units, r_units in wrong:
        problems.append(
            f"operation {op_id} ({funding}, price {price}): charged {c_amount} / {c_free} free"
            f" / {c_units} units, refunded {r_amount} / {r_free} free / {r_units} units"
        )
    failed_paid = await session.scalars(_failed_but_paid())
    for op_id in failed_paid:
        problems.append(f"operation {op_id}: paid for, failed, and never refunded")

    # A result that reached the chat is never also given back: the user would have both.
    both = await session.execute(both_statement)
    for op_id, status, delivered_at, n_refunded in both:
        problems.append(
            f"operation {op_id} ({status}): delivered at {delivered_at} and refunded "
            f"({n_refunded} refund entries)"
        )

    # Money returned to the card through YooKassa was debited from the balance, once.
    refunds = await session.execute(_card_refunds_vs_debits())
    for payment_id, refunded, debited in refunds:
        problems.append(
            f"payment {payment_id}: {refunded} refunded to the card, {-debited} debited"
        )

    # An operator's refund marked succeeded was debited (billing.refunds: the debit first).
    undebited = await session.execute(_undebited_refunds())
    for request_id, payment_id, refund_id in undebited:
        problems.append(
            f"refund request {request_id} of payment {payment_id} succeeded (refund "
            f"{refund_id}) but was never debited"
        )

    # Each payment credited at most once, and only a credited payment has a top-up entry.
    pays = await session.execute(_payments_vs_topups())
    for payment_id, status, amount, credited_at, n, credited in pays:
        if credited_at is None and n:
            problems.append(f"payment {payment_id} ({status}): {n} top-ups but never credited")
        elif credited_at is not None and (n != 1 or credited != amount):
            problems.append(
                f"payment {payment_id}: credited with {n} top-up entries for {credited} "
                f"(amount {amount})"
            )
    orphans = await session.scalar(_orphan_topups())
    if orphans:
        problems.append(f"{orphans} top-up entries without a payment")
    return problems


@cache
def _charge_sources() -> Any:
    e = LedgerEntry.__table__.alias("e")
    h = UserPlan.__table__.alias("h")
    op = Operation.__table__
    moved = (
        case((e.c.amount != 0, 1), else_=0)
        + case((e.c.free_delta != 0, 1), else_=0)
        + case((e.c.units_delta != 0, 1), else_=0)
    )
    on_plan = op.c.funding.in_(PLAN_FUNDED)
    return (
        select(
            op.c.id,
            op.c.funding,
            op.c.price,
            op.c.units,
            op.c.holding_id,
            op.c.period_no,
            h.c.kind,
            e.c.amount,
            e.c.free_delta,
            e.c.units_delta,
            e.c.holding_id,
        )
        .join(e, and_(e.c.operation_id == op.c.id, e.c.kind == LedgerKind.CHARGE.value))
        .outerjoin(h, h.c.id == op.c.holding_id)
        .where(
            or_(
                moved != 1,
                e.c.holding_id.is_distinct_from(op.c.holding_id),
                and_(
                    op.c.funding == Funding.FREE.value,
                    or_(e.c.free_delta != -1, op.c.holding_id.is_not(None)),
                ),
                and_(
                    op.c.funding == Funding.BALANCE.value,
                    or_(e.c.amount != -op.c.price, op.c.holding_id.is_not(None)),
                ),
                and_(
                    on_plan,
                    or_(
                        op.c.units <= 0,
                        e.c.units_delta != -op.c.units,
                        op.c.price != 0,
                        h.c.id.is_(None),
                        h.c.kind != op.c.funding,
                    ),
                ),
                and_(op.c.funding == Funding.SUBSCRIPTION.value, op.c.period_no.is_(None)),
            )
        )
    )


async def _charges_and_sources(session: AsyncSession) -> list[str]:
    """Every charge entry moves exactly one counter — the one of its operation's source: a
    free operation, the price from the balance, or the operation's units from the holding
    the operation names (a subscription's with its period, or a package's)."""
    rows = await session.execute(_charge_sources())
    return [
        f"operation {r[0]} ({r[1]}, price {r[2]}, {r[3]} units, holding {r[4]} period {r[5]}"
        f" of kind {r[6]}): its charge moved {r[7]} kopecks / {r[8]} free / {r[9]} units"
        f" of holding {r[10]}"
        for r in rows
    ]


@cache
def _holding_sums() -> Any:
    e = LedgerEntry.__table__
    h = UserPlan.__table__

    def count(kind: LedgerKind) -> object:
        return func.coalesce(func.sum(case((e.c.kind == kind.value, 1), else_=0)), 0)

    sums = (
        select(
            e.c.holding_id.label("holding_id"),
            func.sum(e.c.units_delta).label("units"),
            func.max(e.c.id).label("last_id"),
            count(LedgerKind.PLAN_PURCHASE).label("bought"),
            count(LedgerKind.RENEWAL).label("renewed"),
            count(LedgerKind.PLAN_END).label("ended"),
        )
        .where(e.c.holding_id.is_not(None))
        .group_by(e.c.holding_id)
        .subquery()
    )
    return select(
        h.c.id,
        h.c.status,
        h.c.units_left,
        h.c.period_no,
        func.coalesce(sums.c.units, 0),
        func.coalesce(sums.c.bought, 0),
        func.coalesce(sums.c.renewed, 0),
        func.coalesce(sums.c.ended, 0),
        sums.c.last_id,
    ).outerjoin(sums, sums.c.holding_id == h.c.id)


async def _holdings(session: AsyncSession) -> list[str]:
    """Every holding's units equal the sum of its entries (and its last entry says so); it
    was bought once, renewed once per period (``renewal:<holding>:<n>`` for n = 2 ..
    period_no: period_no − 1 renewals), and ended once if it has ended."""
    e = LedgerEntry.__table__
    rows = await session.execute(_holding_sums())
    problems: list[str] = []
    last_ids: dict[int, tuple[int, int]] = {}
    renewals: dict[int, int] = {}
    for holding_id, status, left, period_no, units, bought, renewed, ended, last_id in rows:
        if left != units:
            problems.append(f"holding {holding_id}: units left {left} != ledger sum {units}")
        if bought != 1:
            problems.append(f"holding {holding_id}: {bought} plan_purchase entries")
        if renewed != period_no - 1:
            problems.append(
                f"holding {holding_id}: period {period_no} after {renewed} renewal entries"
            )
        elif renewed:
            renewals[holding_id] = period_no
        if ended != (1 if status == HoldingStatus.ENDED.value else 0):
            problems.append(f"holding {holding_id} ({status}): {ended} plan_end entries")
        if last_id is not None:
            last_ids[last_id] = (holding_id, left)
    if last_ids:
        lasts = await session.execute(
            select(e.c.id, e.c.units_after).where(e.c.id.in_(list(last_ids)))
        )
        for entry_id, units_after in lasts:
            holding_id, left = last_ids[entry_id]
            if units_after != left:
                problems.append(
                    f"holding {holding_id}: last entry {entry_id} says {units_after} units, "
                    f"the holding has {left}"
                )
    if renewals:
        # Each period renewed once: the keys are exactly renewal:<holding>:2 .. period_no.
        keys = await session.execute(
            select(e.c.holding_id, e.c.idempotency_key).where(
                e.c.kind == LedgerKind.RENEWAL.value, e.c.holding_id.in_(list(renewals))
            )
        )
        seen: dict[int, set[str]] = {}
        for holding_id, key in keys:
            seen.setdefault(holding_id, set()).add(key)
        for holding_id, period_no in renewals.items():
            expected = {f"renewal:{holding_id}:{n}" for n in range(2, period_no + 1)}
            if seen.get(holding_id, set()) != expected:
                problems.append(
                    f"holding {holding_id}: renewal entries "
                    f"{sorted(seen.get(holding_id, set()))} for periods 2..{period_no}"
                )
    return problems
