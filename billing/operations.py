"""Operations, the hold lifecycle: the charge (the hold), the job's claim, the post (the
result was delivered) and the void (the refund of what did not succeed), the sweeper's
overdue query, the delivery record.

Each function takes a session and never commits: the caller owns the transaction, so a
charge, its operation row and its ledger entry commit together or not at all. Once-only
guarantees come from unique keys and conditional updates, never from reading first and
writing later. After a ``BillingError`` the caller rolls back.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    JSON,
    Integer,
    and_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    literal_column,
    not_,
    null,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from billing import ledger
from billing.errors import (
    ChargeConflict,
    DuplicateRequest,
    InsufficientFunds,
    OperationDelivered,
    OperationLocked,
    OperationNotFound,
    OperationNotRefundable,
    UserNotFound,
)
from billing.models import (
    Funding,
    HoldingStatus,
    LedgerKind,
    Operation,
    OperationModel,
    OperationStatus,
    Plan,
    PlanKind,
    User,
    UserPlan,
    new_key_token,
    utcnow,
)
from billing.prices import operation_type, units_of
from billing.settings import Settings, operation_deadline_seconds

ACTIVE = (OperationStatus.QUEUED, OperationStatus.RUNNING)

_users = User.__table__
_operations = Operation.__table__
_models = OperationModel.__table__


@dataclass(frozen=True)
class ChargeResult:
    operation_id: int
    user_id: int
    op_type: str
    price: int  # kopecks actually taken from the balance (0 unless funding is balance)
    funding: Funding  # the ONE source it was paid from
    balance_after: int
    free_after: int
    key_token: str  # the operation's: names its job and Redis keys (jobqueue.queue)
    units: int = 0  # the units the operation cost (billing.prices.units_of)
    holding_id: int | None = None  # the subscription / package it took units from
    units_after: int | None = None  # that holding's units left after the charge
    # What billing.plans.roll_over did first (renewals, ends, free top-ups), each with the
    # notice the caller may send after its commit (else a maintenance pass sends it).
    rolled_over: tuple[Any, ...] = ()


@dataclass(frozen=True)
class RefundResult:
    operation_id: int
    user_id: int
    funding: Funding
    amount: int  # kopecks given back (0 unless funding is balance)
    free_back: int  # free operations given back
    balance_after: int
    free_after: int
    units_back: int = 0  # units given back to the holding
    # Why a quota / package operation gave nothing back: "period_over" (the subscription's
    # period has rolled over or ended) or "plan_ended" (the package ended); None otherwise.
    not_carried: str | None = None
    holding_id: int | None = None
    units_after: int | None = None  # the holding's units left after the refund


# Why a refund of units gives nothing back (RefundResult.not_carried, the entry's reason).
PERIOD_OVER = "period_over"
PLAN_ENDED = "plan_ended"

PLAN_FUNDED = (Funding.SUBSCRIPTION.value, Funding.PACKAGE.value)
# A charge whose chosen holding was spent meanwhile (PostgreSQL: a concurrent charge of the
# same user committed after this statement's snapshot) writes nothing and is tried again; a
# try loses only when a source ran out, so a few tries are plenty.
CHARGE_TRIES = 10

_plans = Plan.__table__
_holdings = UserPlan.__table__


def _unlocked(dialect: str, unlocks: Any, kind: Any) -> Any:
    """The plan's ``unlocks`` (a JSON list; SQL NULL: every type) contains ``kind``."""
    if dialect == "postgresql":
        return or_(unlocks.is_(None), cast(unlocks, JSONB).has_key(kind))
    listed = func.json_each(unlocks).table_valued("value")
    return or_(
        unlocks.is_(None), exists(select(1).select_from(listed).where(listed.c.value == kind))
    )


def _charge_chain(
    dialect: str,
    *,
    order: tuple[str, ...],
    renews: bool,
    wait_due: bool,
    lean: bool = False,
    quota: bool = False,
) -> ledger.Chain:
    """The charge's steps (see :func:`charge`); ``order``: SPENDING_ORDER; ``renews``:
    FREE_OPERATIONS_RENEW_DAYS is set (free operations may be due); ``wait_due``: a holding
    or free operations due for their roll-over hold the charge back (nothing written; the
    caller rolls over and charges again); ``lean``: for a user who holds no plan — only
    free operations and the balance at the default plan's discount, and nothing written if
    the user holds a plan after all (``holds``: the caller charges again with the whole
    chain); ``quota``: for a user whose last charge the subscription paid — that quota
    only, and nothing written (``go`` false) unless it alone decides the charge: the
    subscription covers it and is live, no source before it in ``order`` could pay (only
    free operations may stand before it), the type is allowed by the default plan or the
    subscription's, nothing is due; else the caller charges again with the whole chain. A
    type that costs 0 units is paid from nothing (funding ``none``)."""
    # Named unlike any column of the tables the chain writes: a parameter named like a
    # column of an UPDATE's table would become a SET of that column.
    now = bindparam("now", type_=_holdings.c.ends_at.type)
    user_id = bindparam("for_user", type_=_users.c.id.type)
    kind = bindparam("op_kind", type_=_operations.c.type.type)
    # The units: the model catalogue's price when the operator set one, else the default
    # the caller passes (billing.prices.units_of: OPERATION_UNITS or PRICES) — the same
    # rule, read inside the statement so that a charge stays one round trip. Read once, in
    # the first step's one-row ``cost`` (each use of a scalar subquery would run it again);
    # later steps take ``old.units``.
    units_read = func.coalesce(
        select(_models.c.units).where(_models.c.type == kind).scalar_subquery(),
        bindparam("op_units", type_=Integer),
    )
    unit_price = bindparam("unit_price", type_=_users.c.balance.type)
    on_plan_sources = [ledger.const(source) for source in PLAN_FUNDED]
    zero, one = ledger.const(0), ledger.const(1)
    active = ledger.const(HoldingStatus.ACTIVE.value)
    subscription = ledger.const(PlanKind.SUBSCRIPTION.value)

    def _head(u: Any, src: Any, price: Any) -> tuple[Any, ...]:
        """The columns every first step starts with: the user's row, the source, the price."""
        return (
            u.c.id,
            u.c.free_operations_left.label("free"),
            u.c.balance,
            u.c.free_operations_granted.label("granted"),
            src.label("src"),
            price.label("price"),
        )

    def _lean_old(u: Any) -> Any:
        """The first step for a user who holds no plan: free operations or the balance at
        the default plan's discount, on the condition that no holding is active."""
        h = _holdings
        # The default plan read once (none: no discount, every type allowed), in one row
        # computed once (LIMIT keeps PostgreSQL from copying it into each use).
        dp = _plans.alias("dp")
        plan = (
            select(
                units_read.label("units"),
                func.coalesce(dp.c.discount_percent, zero).label("discount"),
                func.coalesce(_unlocked(dialect, dp.c.unlocks, kind), true()).label("allowed"),
                exists().where(h.c.user_id == user_id, h.c.status == active).label("holds"),
            )
            .select_from(select(one.label("one")).subquery("one").outerjoin(dp, dp.c.is_default))
            .limit(literal_column("1"))
            .subquery("plan")
        )
        price_due = (
            plan.c.units * unit_price * (ledger.const(100) - plan.c.discount) + ledger.const(50)
        ) // ledger.const(100)
        due = false()
        if renews:
            renew_due = bindparam("free_due_before", type_=_users.c.created_at.type)
            due = func.coalesce(u.c.free_renewed_at, u.c.created_at) <= renew_due
        covers = {
            Funding.FREE.value: u.c.free_operations_left >= one,
            Funding.BALANCE.value: u.c.balance >= price_due,
        }
        # A type of 0 units (free) is paid from nothing.
        src = case(
            (plan.c.units == zero, ledger.const(Funding.NONE.value)),
            *(
                (
                    covers[s],
                    case(
                        (price_due == zero, ledger.const(Funding.NONE.value)),
                        else_=ledger.const(s),
                    )
                    if s == Funding.BALANCE.value
                    else ledger.const(s),
                )
                for s in order
                if s in covers
            ),
            else_=null(),
        )
        go = and_(plan.c.allowed, not_(plan.c.holds))
        return (
            select(
                *_head(u, src, price_due),
                plan.c.units,
                plan.c.allowed,
                due.label("due"),
                (and_(go, not_(due)) if wait_due else go).label("go"),
                plan.c.holds,
            )
            .select_from(u.join(plan, true()))
            .where(u.c.id == user_id)
            .with_for_update(of=u)
        )

    def _quota_old(u: Any, default_allows: Any) -> Any:
        """The first step for a user whose subscription paid their last charge: the user's
        row, their one active subscription and the units, read in one SELECT; ``go`` only
        when that subscription alone decides the charge."""
        h, p = _holdings, _plans
        sub = (
            select(
                h.c.id,
                h.c.units_left,
                h.c.period_no,
                h.c.ends_at,
                _unlocked(dialect, p.c.unlocks, kind).label("unlocks"),
            )
            .select_from(h.join(p, p.c.id == h.c.plan_id))
            .where(h.c.user_id == user_id, h.c.status == active, h.c.kind == subscription)
            .limit(literal_column("1"))
            .subquery("sub")
        )
        cost = select(units_read.label("units")).limit(literal_column("1")).subquery("cost")
        units = cost.c.units
        d = _holdings.alias("d")
        due = exists().where(
            d.c.user_id == user_id, d.c.status == active, d.c.ends_at <= now
        )  # a holding past its end: rolled over by the whole chain first
        if renews:
            renew_due = bindparam("free_due_before", type_=_users.c.created_at.type)
            due = or_(due, func.coalesce(u.c.free_renewed_at, u.c.created_at) <= renew_due)
        before = order[: order.index(Funding.SUBSCRIPTION.value)]
        assert set(before) <= {Funding.FREE.value}, order  # see quota_order()
        allowed = or_(default_allows, func.coalesce(sub.c.unlocks, false()))
        go = and_(
            units > zero,
            sub.c.units_left >= units,
            or_(sub.c.ends_at.is_(None), sub.c.ends_at > now),
            allowed,
            not_(due),
            u.c.free_operations_left < one if before else true(),
        )
        paid_by = case((go, ledger.const(Funding.SUBSCRIPTION.value)), else_=null())
        return (
            select(
                *_head(u, paid_by, zero),
                units,
                sub.c.id.label("holding"),
                sub.c.period_no,
                allowed.label("allowed"),
                false().label("due"),
                go.label("go"),
                true().label("holds"),
            )
            .select_from(u.outerjoin(sub, true()).join(cost, true()))
            .where(u.c.id == user_id)
            .with_for_update(of=u)
        )

    def old(_: Any) -> Any:
        u, h, p = _users, _holdings, _plans
        live = or_(h.c.ends_at.is_(None), h.c.ends_at > now)
        # The default plan every user is on (none: no default plan, nothing restricted).
        dp = _plans.alias("dp")
        if lean:
            return _lean_old(u)
        if quota:
            default_allows = func.coalesce(
                select(_unlocked(dialect, dp.c.unlocks, kind))
                .where(dp.c.is_default)
                .scalar_subquery(),
                true(),
            )
            return _quota_old(u, default_allows)
        # The user's active holdings in one aggregate (one row, holdings or not), and what
        # follows from them computed there once: the subscription that covers the units, the
        # price less the best discount of the plans held, the access, whether any is due for
        # its roll-over (one past its end counts for nothing else).
        held_discount = func.coalesce(func.max(case((live, p.c.discount_percent))), zero)
        greatest = func.greatest if dialect == "postgresql" else func.max  # SQLite: scalar max
        # The default plan read once, in a one-row aggregate (none: no discount, every type
        # allowed), rather than by a scalar subquery per use.
        dflt = (
            select(
                func.coalesce(func.max(dp.c.discount_percent), zero).label("discount"),
                (
                    func.coalesce(
                        func.max(case((_unlocked(dialect, dp.c.unlocks, kind), one), else_=zero)),
                        one,
                    )
                    == one
                ).label("allows"),
            )
            .where(dp.c.is_default)
            .subquery("dflt")
        )

        # The live subscription (one at most is active) and its units left.
        live_sub = and_(h.c.kind == subscription, live)
        held = (
            select(
                func.max(case((live_sub, h.c.id))).label("sub_id"),
                func.max(case((live_sub, h.c.units_left))).label("sub_units"),
                func.max(case((h.c.kind == subscription, h.c.period_no))).label("period_no"),
                held_discount.label("discount"),
                (
                    func.coalesce(
                        func.max(case((and_(live, _unlocked(dialect, p.c.unlocks, kind)), one))),
                        zero,
                    )
                    == one
                ).label("unlocked"),
                (func.coalesce(func.max(case((h.c.ends_at <= now, one))), zero) == one).label(
                    "due"
                ),
                (func.count(h.c.id) > zero).label("holds"),
            )
            .select_from(h.join(p, p.c.id == h.c.plan_id))
            .where(h.c.user_id == user_id, h.c.status == active)
            .subquery("holds")
        )
        cost = select(units_read.label("units")).limit(literal_column("1")).subquery("cost")
        units = cost.c.units
        # The best discount of the plans held and the default plan's; the access: the default
        # plan allows the type, or a plan held unlocks it.
        discount = greatest(held.c.discount, dflt.c.discount)
        allowed = or_(dflt.c.allows, held.c.unlocked)
        price = (
            units * unit_price * (ledger.const(100) - discount) + ledger.const(50)
        ) // ledger.const(100)
        # The package a charge would take from: enough units, oldest expiry first. A scalar
        # subquery: PostgreSQL runs it only when the CASE below reaches it (not when the
        # subscription or free operations pay).
        pkg_query = (
            select(h.c.id)
            .where(
                h.c.user_id == user_id,
                h.c.status == active,
                h.c.kind == ledger.const(PlanKind.PACKAGE.value),
                h.c.units_left >= units,
                live,
            )
            .order_by(h.c.ends_at.asc().nulls_last(), h.c.id)
            .limit(literal_column("1"))
        )
        sources = u.join(held, true()).join(cost, true()).join(dflt, true())
        if dialect == "postgresql":
            # Read once, in a LATERAL join (an index scan of the user's few holdings): as a
            # scalar subquery it stood three times in the plan (the source, the holding, the
            # check), each initialised on every run — the charge's costliest part after the
            # writes (bench/charge.py, plans-sub).
            pkg = pkg_query.lateral("pkg")
            sources = sources.outerjoin(pkg, true())
            pkg_id = pkg.c.id
        else:
            pkg_id = pkg_query.scalar_subquery()
        due = held.c.due
        if renews:  # free operations due for their top-up
            renew_due = bindparam("free_due_before", type_=_users.c.created_at.type)
            due = or_(due, func.coalesce(u.c.free_renewed_at, u.c.created_at) <= renew_due)
        covers = {
            Funding.FREE.value: u.c.free_operations_left >= one,
            Funding.SUBSCRIPTION.value: held.c.sub_units >= units,
            Funding.PACKAGE.value: pkg_id.is_not(None),
            Funding.BALANCE.value: u.c.balance >= price,
        }
        whens = [(covers[source], source) for source in order]
        funding = {  # a 100 % discount makes the balance pay nothing: a free operation
            s: case(
                (price == zero, ledger.const(Funding.NONE.value)),
                else_=ledger.const(s),
            )
            if s == Funding.BALANCE.value
            else ledger.const(s)
            for _, s in whens
        }
        free_type = units == zero  # paid from nothing, held by nothing
        src = case(
            (free_type, ledger.const(Funding.NONE.value)),
            *((cond, funding[s]) for cond, s in whens),
            else_=null(),
        )
        # The holding of the first source that covers (None for free / balance).
        holding = case(
            (free_type, cast(null(), _holdings.c.id.type)),  # typed: compared with ids later
            *(
                (
                    cond,
                    held.c.sub_id
                    if s == Funding.SUBSCRIPTION.value
                    else pkg_id
                    if s == Funding.PACKAGE.value
                    else null(),
                )
                for cond, s in whens
            ),
            else_=null(),
        )
        return (
            select(
                *_head(u, src, price),
                units,
                holding.label("holding"),
                held.c.period_no,
                allowed.label("allowed"),
                due.label("due"),
                (and_(allowed, not_(due)) if wait_due else allowed).label("go"),
                held.c.holds,
            )
            .select_from(sources)
            .where(u.c.id == user_id)
            .with_for_update(of=u)
        )

    def held(p: Any) -> Any:
        """Take the units from the chosen holding, re-checked in the UPDATE itself: a stale
        read (a concurrent charge spent them) or a holding past its end updates nothing."""
        was, h = p["old"], _holdings
        return (
            update(h)
            .where(
                h.c.id == was.holding,
                was.go,
                was.src.in_(on_plan_sources),
                h.c.status == active,
                h.c.units_left >= was.units,
                or_(h.c.ends_at.is_(None), h.c.ends_at > now),
                or_(
                    h.c.kind == ledger.const(PlanKind.PACKAGE.value),
                    h.c.period_no == was.period_no,
                ),
            )
            .values(units_left=h.c.units_left - was.units)
            .returning(h.c.id, h.c.units_left, h.c.period_no)
        )

    def debit(p: Any) -> Any:
        """The user's counter, for a free operation or money (a charge from a plan, or of a
        free type, leaves the user's row as the lock read it)."""
        was, u = p["old"], _users
        src = was.src
        free = ledger.const(Funding.FREE.value)
        if lean:
            return lean_debit(was, u, src, free)
        return (
            update(u)
            .where(
                u.c.id == was.id,
                was.go,
                src.in_([free, ledger.const(Funding.BALANCE.value)]),
                case(
                    (src == free, u.c.free_operations_left >= one), else_=u.c.balance >= was.price
                ),
            )
            .values(
                balance=u.c.balance - case((src == free, zero), else_=was.price),
                free_operations_left=u.c.free_operations_left
                - case((src == free, one), else_=zero),
            )
            .returning(u.c.id, u.c.balance, u.c.free_operations_left)
        )

    def lean_debit(was: Any, u: Any, src: Any, free: Any) -> Any:
        """The lean chain's debit: every charge it makes moves the user's row here (a free
        operation, the balance, or nothing for a type paid from nothing), and returns the
        decision with it, so that the operation and its entry read this one step, as the
        charge before plans did (a chain that reads one earlier step costs PostgreSQL less
        than one that reads two)."""
        balance = ledger.const(Funding.BALANCE.value)
        return (
            update(u)
            .where(
                u.c.id == was.id,
                was.go,
                case(
                    (src == free, u.c.free_operations_left >= one),
                    (src == balance, u.c.balance >= was.price),
                    else_=src == ledger.const(Funding.NONE.value),
                ),
            )
            .values(
                balance=u.c.balance - case((src == balance, was.price), else_=zero),
                free_operations_left=u.c.free_operations_left
                - case((src == free, one), else_=zero),
            )
            .returning(
                u.c.id,
                u.c.balance,
                u.c.free_operations_left,
                src.label("src"),
                was.price.label("price"),
                was.units.label("units"),
            )
        )

    def operation(p: Any) -> Any:
        was, took, debited = p["old"], p.get("held", NO_HOLDING), p.get("debit", NO_DEBIT)
        if lean:  # the decision as the debit returned it: a row only when it paid
            was = debited
        c = _operations.c
        values = {
            "user_id": was.id,
            "type": kind,
            "price": case((was.src == ledger.const(Funding.BALANCE.value), was.price), else_=zero),
            "funding": was.src,
            "status": ledger.const(OperationStatus.QUEUED.value),
            "request_key": bindparam("request_key", type_=c.request_key.type),
            "chat_id": bindparam("chat_id", type_=c.chat_id.type),
            # None is SQL NULL, as the ORM writes an unset input.
            "input_ref": bindparam("input_ref", type_=JSON(none_as_null=True)),
            "deadline_at": bindparam("deadline_at", type_=c.deadline_at.type),
            "attempts": zero,
            # Given: a CTE would not evaluate the column's Python default.
            "key_token": bindparam("key_token", type_=c.key_token.type),
            "holding_id": case((was.src.in_(on_plan_sources), took.id), else_=null()),
            "units": was.units,
            "period_no": case(
                (was.src == ledger.const(Funding.SUBSCRIPTION.value), took.period_no),
                else_=null(),
            ),
        }
        if lean:  # no holding: none to name; the debit's row is the payment
            values["holding_id"] = NO_HOLDING.id
            values["period_no"] = NO_HOLDING.period_no
            written_when: tuple[Any, ...] = ()
        else:  # written only when its source was: the holding's units or the user's counter
            # taken (a free type takes nothing)
            paid_for = case(
                (was.src.in_(on_plan_sources), took.id.is_not(None)),
                (was.src == ledger.const(Funding.NONE.value), true()),
                else_=debited.id.is_not(None),
            )
            written_when = (was.go, was.src.is_not(None), paid_for)
        return (
            ledger.insert_or_skip(dialect, c.request_key)
            .from_select(
                list(values),
                select(*(v.label(k) for k, v in values.items())).where(*written_when),
                include_defaults=False,
            )
            .returning(c.id, c.user_id, c.price, c.funding, c.key_token, c.holding_id, c.units)
        )

    def entry(p: Any) -> Any:
        was, op, took = p["old"], p["operation"], p.get("held", NO_HOLDING)
        debited = p.get("debit", NO_DEBIT)
        on_plan = op.funding.in_(on_plan_sources)
        if lean:  # the debit always wrote the user's row
            was = user = debited
        else:  # the user's counters after: moved by the debit, else as the lock read them
            user = SimpleNamespace(
                id=op.user_id,
                balance=func.coalesce(debited.balance, was.balance),
                free_operations_left=func.coalesce(debited.free_operations_left, was.free),
            )
        return ledger.entry(
            user,
            kind=LedgerKind.CHARGE,
            amount=-op.price,
            free_delta=case(
                (op.funding == ledger.const(Funding.FREE.value), ledger.const(-1)),
                else_=zero,
            ),
            units_delta=zero if lean else case((on_plan, -op.units), else_=zero),
            units_after=NO_HOLDING.units_left if lean else case((on_plan, took.units_left)),
            holding_id=NO_HOLDING.id if lean else op.holding_id,
            key=ledger.key_of("charge:", op.id),
            operation_id=op.id,
            where=and_(op.user_id == was.id, op.funding != ledger.const(Funding.NONE.value)),
        )

    first = ("id", "free", "balance", "granted", "src", "price", "allowed", "due", "holds")
    if quota:
        first = (*first, "go")
    if lean:  # what the caller cannot tell otherwise (the debit and the operation: see charge)
        first = ("free", "balance", "granted", "src", "price", "units", "allowed", "due", "holds")
    return ledger.Chain(
        ledger.Step("old", old, returns=first),
        *(
            ()
            if lean
            else (ledger.Step("held", held, optional=True, returns=("id", "units_left")),)
        ),
        *(
            ()
            if quota
            else (
                ledger.Step(
                    "debit",
                    debit,
                    optional=not lean,
                    returns=("balance", "free_operations_left"),
                ),
            )
        ),
        ledger.Step(
            "operation",
            operation,
            returns=("id",) if lean else ("id", "price", "funding", "holding_id", "units"),
        ),
        ledger.Step("entry", entry, returns=()),
    )


# A lean chain has no holding step: what the later steps read of it instead.
NO_HOLDING = SimpleNamespace(
    id=cast(null(), UserPlan.__table__.c.id.type),
    units_left=cast(null(), Integer),
    period_no=cast(null(), Integer),
)
# A quota chain has no debit step (its charge never moves the user's counters).
NO_DEBIT = SimpleNamespace(
    id=cast(null(), User.__table__.c.id.type),
    balance=cast(null(), User.__table__.c.balance.type),
    free_operations_left=cast(null(), Integer),
)
_CHARGES: dict[tuple[Any, ...], ledger.Chain] = {}
# Users who held no plan at their last charge in this process: user id -> the database
# (engine) of that charge. Their next charge tries the lean chain first. Only a hint: the
# lean chain writes nothing for a user who holds a plan, and the charge is made again with
# the whole chain. Bounded (emptied when full: ~5 MB at most).
_HOLDS_NOTHING: dict[int, int] = {}
_HOLDS_NOTHING_MAX = 50_000
# Users whose subscription paid their last charge in this process (user id -> database):
# their next charge tries the quota chain first. A hint like _HOLDS_NOTHING: the quota
# chain writes nothing unless the subscription alone decides the charge.
_SUB_PAID: dict[int, int] = {}
_ROLL_OVER: list[Any] = []  # billing.plans.roll_over, looked up once (None: not there)


def _remember(user_id: int, database: int, *, holds_nothing: bool) -> None:
    if holds_nothing:
        if len(_HOLDS_NOTHING) >= _HOLDS_NOTHING_MAX:
            _HOLDS_NOTHING.clear()
        _HOLDS_NOTHING[user_id] = database
    else:
        _HOLDS_NOTHING.pop(user_id, None)


def _remember_funding(user_id: int, database: int, funding: str) -> None:
    if funding == Funding.SUBSCRIPTION.value:
        if len(_SUB_PAID) >= _HOLDS_NOTHING_MAX:
            _SUB_PAID.clear()
        _SUB_PAID[user_id] = database
    else:
        _SUB_PAID.pop(user_id, None)


def quota_order(order: tuple[str, ...]) -> bool:
    """The quota chain can decide a charge in this SPENDING_ORDER: the subscription is in
    it and only free operations may come before it (a package or the balance first would
    need what the quota chain does not read)."""
    if Funding.SUBSCRIPTION.value not in order:
        return False
    return set(order[: order.index(Funding.SUBSCRIPTION.value)]) <= {Funding.FREE.value}


def _roll_over() -> Any:
    """``billing.plans.roll_over`` if that module has it (imported late: it may import this
    module)."""
    if not _ROLL_OVER:
        try:
            from billing import plans  # noqa: PLC0415
        except ImportError:
            _ROLL_OVER.append(None)
        else:
            _ROLL_OVER.append(getattr(plans, "roll_over", None))
    return _ROLL_OVER[0]


async def charge(
    session: AsyncSession,
    settings: Settings,
    *,
    user_id: int,
    op_type: str,
    request_key: str | None = None,
    chat_id: int | None = None,
    input_ref: dict[str, Any] | None = None,
) -> ChargeResult:
    """Pay for one operation from ONE source: the first in SPENDING_ORDER that covers the
    whole of it — a free operation (one, whatever the units), the subscription's quota for
    this period (the type's units), a package (oldest expiry first), the balance (units ×
    PRICE_PER_OPERATION less the best discount of the plans held, rounded half up). Never
    split across sources.

    Raises ``OperationLocked`` (no plan held unlocks the type; nothing written),
    ``InsufficientFunds`` (nothing written), ``DuplicateRequest`` when the same Telegram
    update was already charged (roll back: the debit is undone with it),
    ``UnknownOperationType``, ``UserNotFound``, ``ChargeConflict``.

    One chain (:mod:`billing.ledger`), one round trip on PostgreSQL: lock the user's row and
    read, in the same SELECT, the subscription, the package to use, the discount, the
    access and whether a holding is due for its roll-over; take the units from the chosen
    holding by a conditional UPDATE (enough units, active, same period, not past its end),
    move the user's counters (conditional too), write the operation (``ON CONFLICT`` on
    the request key) and its ledger entry. The lock re-reads the user's row a concurrent
    charge just committed, but not the holdings: a holding a concurrent charge spent
    meanwhile makes its UPDATE (and so the whole chain) write nothing, and the charge is
    tried again on fresh data. A holding due for its roll-over (a period ended, a package
    expired) or free operations due for renewal: ``billing.plans.roll_over`` runs first,
    then the charge (without it, a holding past its end is simply not used).

    A user who held no plan at their last charge in this process is charged by a lean
    chain first (free operations and the balance at the default plan's discount, no
    holdings read): most users hold nothing, and the lean statement costs what the charge
    cost before plans. It writes nothing if the user holds a plan after all, and the charge
    is made again with the whole chain (one more round trip, once per purchase). In the
    same way a user whose subscription paid their last charge is charged by the quota
    chain first (the user's row and that subscription only): it writes nothing unless the
    subscription alone decides the charge (free operations left before it, a type it does
    not unlock, a holding due, the quota run out: the whole chain).
    """
    kind = operation_type(op_type).value
    # The default units; the model catalogue's, when the operator set them, win inside the
    # statement (see _charge_chain).
    units = units_of(kind, settings)
    deadline_at = utcnow() + timedelta(seconds=operation_deadline_seconds(settings, queued=True))
    bind = session.get_bind()
    dialect = bind.dialect.name
    order = settings.SPENDING_ORDER
    roll_over = _roll_over()
    wait_due = roll_over is not None
    renew_days = settings.FREE_OPERATIONS_RENEW_DAYS
    database = id(bind)
    lean = _HOLDS_NOTHING.get(user_id) == database
    quota = not lean and _SUB_PAID.get(user_id) == database and quota_order(order)
    now = utcnow()
    rolled: tuple[Any, ...] = ()
    for _ in range(CHARGE_TRIES):
        key = (dialect, order, renew_days is not None, wait_due, lean, quota)
        chain = _CHARGES.get(key)
        if chain is None:
            chain = _CHARGES[key] = _charge_chain(
                dialect,
                order=order,
                renews=renew_days is not None,
                wait_due=wait_due,
                lean=lean,
                quota=quota,
            )
        params: dict[str, Any] = {}
        if renew_days is not None:
            params["free_due_before"] = now - timedelta(days=renew_days)
        token = new_key_token()
        rows = await chain.run(
            session,
            for_user=user_id,
            unit_price=settings.price_kopecks,
            op_units=units,
            op_kind=kind,
            now=now,
            request_key=request_key,
            chat_id=chat_id,
            input_ref=input_ref,
            deadline_at=deadline_at,
            key_token=token,
            **params,
        )
        was, took, op = rows["old"], rows.get("held"), rows["operation"]
        debited = rows.get("debit")
        if was is None:
            raise UserNotFound(user_id)
        if quota and not was.go:
            quota = False  # not the subscription's alone: nothing written, the whole chain
            continue
        _remember(user_id, database, holds_nothing=not was.holds)
        if lean and was.holds:
            lean = False  # a plan since the last charge: nothing written, the whole chain
            continue
        if was.due and wait_due:
            # Before access too: a renewal that is due may be what unlocks the type.
            rolled = tuple(await roll_over(session, settings, user_id=user_id, now=now))
            wait_due = False  # rolled over: what is still "due" is not ours to wait for
            continue
        if not was.allowed:
            raise OperationLocked(kind)
        if op is None and was.src in PLAN_FUNDED and took is None:
            now = utcnow()
            continue  # the holding was spent (or rolled) meanwhile: nothing written, again
        if op is None:
            # Nothing paid, or paid twice for one update: a re-delivery is a duplicate (roll
            # back), not a reason to show a re-delivering user the top-up screen.
            existing = None
            if request_key is not None:
                existing = await session.scalar(
                    select(Operation.id).where(Operation.request_key == request_key)
                )
            if existing is not None or debited is not None or took is not None:
                raise DuplicateRequest(request_key or "", existing)
            raise InsufficientFunds(
                price=was.price, balance=was.balance, free_left=was.free, free_granted=was.granted
            )
        if lean:  # the lean chain returns the operation's id alone: the rest is the decision
            funding, units, holding_id = was.src, was.units, None
            price = was.price if funding == Funding.BALANCE.value else 0
        else:
            funding, units, holding_id, price = op.funding, op.units, op.holding_id, op.price
        _remember_funding(user_id, database, funding)
        return ChargeResult(
            operation_id=op.id,
            user_id=user_id,
            op_type=kind,
            price=price,
            funding=Funding(funding),
            balance_after=debited.balance if debited is not None else was.balance,
            free_after=debited.free_operations_left if debited is not None else was.free,
            key_token=token,  # the operation's: a row written by this chain
            units=units,
            holding_id=holding_id,
            units_after=took.units_left if took is not None else None,
            rolled_over=rolled,
        )
    raise ChargeConflict(user_id, CHARGE_TRIES)


async def set_operation_job(
    session: AsyncSession,
    *,
    operation_id: int,
    job_id: str,
    status_message_id: int | None = None,
) -> None:
    values: dict[str, Any] = {"job_id": job_id}
    if status_message_id is not None:
        values["status_message_id"] = status_message_id
    await session.execute(update(Operation).where(Operation.id == operation_id).values(**values))


# What a job needs of a claimed operation and its user (see ``claim_operation``).
CLAIMED_COLUMNS = (
    Operation.id,
    Operation.user_id,
    Operation.type,
    Operation.price,
    Operation.funding,
    Operation.chat_id,
    Operation.status_message_id,
    Operation.input_ref,
    Operation.attempts,
    Operation.key_token,
    User.telegram_id,  # never NULL: the "user" step's first column (see ledger.Step)
    User.language,
    User.balance,
    User.free_operations_left,
    Operation.units,
    # The quota / package it was paid from, its units left now (NULL: not paid from a plan).
    select(UserPlan.units_left)
    .where(UserPlan.id == Operation.holding_id)
    .correlate(Operation)
    .scalar_subquery()
    .label("units_left"),
)
_CLAIMED_OPERATION = [c.key for c in CLAIMED_COLUMNS if getattr(c, "class_", None) is Operation]
_CLAIMED_USER = [c.key for c in CLAIMED_COLUMNS if getattr(c, "class_", None) is User]
# A claimed operation: ``CLAIMED_COLUMNS`` by name, in that order (as a row of them).
ClaimedRow = namedtuple("ClaimedRow", [c.key for c in CLAIMED_COLUMNS])


def _claim_chain(*, deadline: bool, token: bool) -> ledger.Chain:
    """The job's claim (see :func:`claim_operation`); ``deadline``: the deadline moves,
    ``token``: only the operation of that key token."""
    c = _operations.c
    # No parameter is named as a column of operations: an UPDATE's execution parameters of a
    # column's name are SET as well.

    def claim(_: Any) -> Any:
        conditions = [
            c.id == bindparam("operation_id", type_=c.id.type),
            c.status.in_([ledger.const(s.value) for s in ACTIVE]),
        ]
        if token:
            # A job left in Redis by a database that started again names another operation.
            conditions.append(c.key_token == bindparam("job_token", type_=c.key_token.type))
        values = {
            "status": ledger.const(OperationStatus.RUNNING.value),
            "attempts": c.attempts + ledger.const(1),
            "started_at": bindparam("now", type_=c.started_at.type),
        }
        if deadline:
            values["deadline_at"] = bindparam("deadline", type_=c.deadline_at.type)
        return (
            update(_operations)
            .where(*conditions)
            .values(**values)
            .returning(*(c[key] for key in _CLAIMED_OPERATION), c.holding_id)
        )

    def user(p: Any) -> Any:
        # Read in the claim's statement on PostgreSQL (its snapshot, as the UPDATE ... FROM
        # users was), after it in the same transaction on SQLite; the claim moves no money.
        holdings = UserPlan.__table__
        units_left = (
            select(holdings.c.units_left)
            .where(holdings.c.id == p["claim"].holding_id)
            .scalar_subquery()
            .label("units_left")
        )
        return select(*(_users.c[key] for key in _CLAIMED_USER), units_left).where(
            _users.c.id == p["claim"].user_id
        )

    return ledger.Chain(ledger.Step("claim", claim), ledger.Step("user", user))


_CLAIMS: dict[tuple[bool, bool], ledger.Chain] = {}


async def claim_operation(
    session: AsyncSession,
    *,
    operation_id: int,
    deadline_seconds: int | None = None,
    key_token: str | None = None,
) -> ClaimedRow | None:
    """Queued → running (or a retry of running): one more attempt, started now, the deadline
    ``deadline_seconds`` from now (unchanged without it). Returns ``CLAIMED_COLUMNS`` (the
    operation and its user's balance right after the claim), or None if the operation
    already has an outcome (or, with ``key_token``, is not the operation of that token).

    One chain (:mod:`billing.ledger`): the conditional ``UPDATE`` of the operation and the
    read of its user — a job's claim is one round trip on PostgreSQL."""
    variant = (deadline_seconds is not None, key_token is not None)
    chain = _CLAIMS.get(variant)
    if chain is None:
        chain = _CLAIMS[variant] = _claim_chain(deadline=variant[0], token=variant[1])
    now = utcnow()
    params: dict[str, Any] = {"operation_id": operation_id, "now": now}
    if deadline_seconds is not None:
        params["deadline"] = now + timedelta(seconds=deadline_seconds)
    if key_token is not None:
        params["job_token"] = key_token
    rows = await chain.run(session, **params)
    claimed, user = rows["claim"], rows["user"]
    if claimed is None:
        return None
    assert user is not None, operation_id  # operations.user_id references users.id
    return ClaimedRow(
        **{key: getattr(claimed, key) for key in _CLAIMED_OPERATION},
        **{key: getattr(user, key) for key in _CLAIMED_USER},
        units_left=user.units_left,
    )


async def claimed_operation(session: AsyncSession, *, operation_id: int) -> Any | None:
    """``CLAIMED_COLUMNS`` of an operation, whatever its status (None if there is none)."""
    result = await session.execute(
        select(*CLAIMED_COLUMNS)
        .join(User, User.id == Operation.user_id)
        .where(Operation.id == operation_id)
    )
    return result.one_or_none()


async def complete_operation(
    session: AsyncSession, *, operation_id: int, result_ref: dict[str, Any] | None = None
) -> bool:
    """Post the hold: the result was delivered. False if it was already voided or posted.

    A delivery time the job could not write when Telegram accepted the result
    (:func:`record_delivery`) is filled in now, so a posted operation always has one."""
    result = await session.execute(
        update(Operation)
        .where(Operation.id == operation_id, Operation.status.in_(ACTIVE))
        .values(
            status=OperationStatus.SUCCEEDED.value,
            result_ref=result_ref,
            finished_at=utcnow(),
            delivered_at=func.coalesce(Operation.delivered_at, utcnow()),
            error=None,
        )
        .returning(Operation.id)
    )
    return result.scalar_one_or_none() is not None


async def operation_key_token(session: AsyncSession, *, operation_id: int) -> str | None:
    """The operation's key token (see ``Operation.key_token``), None if there is none."""
    return await session.scalar(select(Operation.key_token).where(Operation.id == operation_id))


async def record_delivery(session: AsyncSession, *, operation_id: int) -> str | None:
    """Write that the operation's result reached the chat (Telegram accepted it), whatever
    the operation's status: a refunded operation with a delivery time is what the audit
    reports. The first time is kept. Returns the status (None if there is no operation)."""
    return await session.scalar(
        update(Operation)
        .where(Operation.id == operation_id)
        .values(delivered_at=func.coalesce(Operation.delivered_at, utcnow()))
        .returning(Operation.status)
    )


async def operation_status(session: AsyncSession, *, operation_id: int) -> str | None:
    """The operation's status now (None if there is no such operation)."""
    return await session.scalar(select(Operation.status).where(Operation.id == operation_id))


async def refund_operation(
    session: AsyncSession,
    *,
    operation_id: int,
    error: str | None = None,
    only_if_queued: bool = False,
    only_if_overdue_at: datetime | None = None,
) -> RefundResult | None:
    """Void the hold of an operation that did not succeed, exactly once.

    Returns None when it was already refunded (any number of callers, concurrently or not,
    get one refund). It goes back to the source it came from: a free operation as a free
    operation, money as money, units to the subscription or package they came from — only
    while that holding is active in the same period (a package: not ended); else nothing
    moves, the entry records it with the reason "period_over" / "plan_ended", and
    ``RefundResult.not_carried`` says so for the user's message.
    Raises ``OperationNotRefundable`` for a succeeded operation, ``OperationDelivered`` for
    one whose result already reached the chat (its caller posts it instead),
    ``OperationNotFound``.

    The conditions are re-checked in the same conditional update, never read earlier:
    ``only_if_queued`` — the bot reversing a charge whose enqueue failed must not void an
    operation a worker has already claimed (the enqueue may have reached Redis);
    ``only_if_overdue_at`` — the sweeper voids only what is still past its deadline at that
    moment (a job that claimed it meanwhile extended the deadline). Both return None when
    the condition no longer holds.
    """
    # A delivered result is never refunded, even when the Redis marker that says so is gone.
    conditions = [
        Operation.id == operation_id,
        Operation.status.in_(ACTIVE),
        Operation.delivered_at.is_(None),
    ]
    if only_if_queued:
        conditions.append(Operation.status == OperationStatus.QUEUED.value)
    if only_if_overdue_at is not None:
        conditions.append(Operation.deadline_at < only_if_overdue_at)
    h = _holdings
    now = utcnow()

    def amount(v: Any) -> Any:
        return case((v.funding == Funding.BALANCE.value, v.price), else_=0)

    def free_back(v: Any) -> Any:
        return case((v.funding == Funding.FREE.value, 1), else_=0)

    def back(p: Any) -> Any:
        """Units back to the holding they came from, only while it is active in the same
        period (a subscription) or not ended (a package): never into a new period."""
        v = p["voided"]
        return (
            update(h)
            .where(
                h.c.id == v.holding_id,
                h.c.status == HoldingStatus.ACTIVE.value,
                or_(h.c.ends_at.is_(None), h.c.ends_at > now),
                or_(h.c.kind == PlanKind.PACKAGE.value, h.c.period_no == v.period_no),
            )
            .values(units_left=h.c.units_left + v.units)
            .returning(h.c.id, h.c.units_left)
        )

    def entry(p: Any) -> Any:
        v, gave = p["voided"], p["back"]
        on_plan = v.holding_id.is_not(None)
        now_left = select(h.c.units_left).where(h.c.id == v.holding_id).scalar_subquery()
        return ledger.entry(
            p["moved"],
            kind=LedgerKind.REFUND,
            amount=amount(v),
            free_delta=free_back(v),
            units_delta=case((gave.id.is_not(None), v.units), else_=0),
            units_after=case((on_plan, func.coalesce(gave.units_left, now_left)), else_=null()),
            holding_id=v.holding_id,
            # Nothing moved: said in the entry, and to the user (RefundResult.not_carried).
            reason=case(
                (
                    and_(on_plan, gave.id.is_(None)),
                    case((v.funding == Funding.SUBSCRIPTION.value, PERIOD_OVER), else_=PLAN_ENDED),
                ),
                else_=null(),
            ),
            key=f"refund:{operation_id}",
            operation_id=operation_id,
            where=and_(p["moved"].id == v.user_id, v.funding != Funding.NONE.value),
        )

    rows = await ledger.run(
        session,
        [
            ledger.Step(
                "voided",
                lambda _: update(_operations)
                .where(*conditions)
                .values(
                    status=case(
                        (Operation.funding == Funding.NONE.value, OperationStatus.FAILED.value),
                        else_=OperationStatus.REFUNDED.value,
                    ),
                    error=(error or "")[:2000] or None,
                    finished_at=now,
                )
                .returning(
                    _operations.c.user_id,
                    _operations.c.funding,
                    _operations.c.price,
                    _operations.c.holding_id,
                    _operations.c.units,
                    _operations.c.period_no,
                ),
            ),
            # Units back to a quota or package that can still take them (else none).
            ledger.Step("back", back, optional=True),
            # A free operation comes back as a free operation, money as money; a free type
            # (funding "none") moves nothing and has no entry.
            ledger.Step(
                "moved",
                lambda p: ledger.balance_step(
                    p["voided"].user_id,
                    amount=amount(p["voided"]),
                    free_delta=free_back(p["voided"]),
                ),
            ),
            ledger.Step("entry", entry),
        ],
    )
    voided, gave, moved = rows["voided"], rows["back"], rows["moved"]
    if voided is None:
        found = select(Operation.status, Operation.delivered_at).where(
            Operation.id == operation_id
        )
        row = (await session.execute(found)).one_or_none()
        if row is None:
            raise OperationNotFound(operation_id)
        if row.status == OperationStatus.SUCCEEDED:
            raise OperationNotRefundable(operation_id, row.status)
        if row.status in ACTIVE and row.delivered_at is not None:
            raise OperationDelivered(operation_id)
        return None
    funding = Funding(voided.funding)
    on_plan = funding.value in PLAN_FUNDED
    units_after = gave.units_left if gave is not None else None
    if on_plan and gave is None:
        units_after = await session.scalar(
            select(UserPlan.units_left).where(UserPlan.id == voided.holding_id)
        )
    return RefundResult(
        operation_id=operation_id,
        user_id=voided.user_id,
        funding=funding,
        amount=voided.price if funding is Funding.BALANCE else 0,
        free_back=1 if funding is Funding.FREE else 0,
        balance_after=moved.balance,
        free_after=moved.free_operations_left,
        units_back=voided.units if gave is not None else 0,
        not_carried=(
            None
            if not on_plan or gave is not None
            else PERIOD_OVER
            if funding is Funding.SUBSCRIPTION
            else PLAN_ENDED
        ),
        holding_id=voided.holding_id,
        units_after=units_after,
    )


async def overdue_operations(
    session: AsyncSession, *, now: datetime | None = None, limit: int = 100
) -> list[int]:
    """Operations still queued or running past their deadline: the sweeper voids them."""
    now = now or utcnow()
    rows = await session.scalars(
        select(Operation.id)
        .where(Operation.status.in_(ACTIVE), Operation.deadline_at < now)
        .order_by(Operation.deadline_at)
        .limit(limit)
    )
    return list(rows)
