"""Operations, the hold lifecycle: the charge (the hold), the job's claim, the post (the
result was delivered) and the void (the refund of what did not succeed), the sweeper's
overdue query, the delivery record.

Each function takes a session and never commits: the caller owns the transaction, so a
charge, its operation row and its ledger entry commit together or not at all. Once-only
guarantees come from unique keys and conditional updates, never from reading first and
writing later. After a ``BillingError`` the caller rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Integer,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    not_,
    null,
    or_,
    select,
    true,
    union_all,
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
    units: int = 0  # the units the operation cost (catalogue + OPERATION_UNITS)
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


def _charge_chain(dialect: str, *, paid: bool, order: tuple[str, ...]) -> ledger.Chain:
    """The charge's steps (see :func:`charge`); ``paid``: the type costs units; ``order``:
    SPENDING_ORDER."""
    # Named unlike any column of the tables the chain writes: a parameter named like a
    # column of an UPDATE's table would become a SET of that column.
    price = bindparam("full_price", type_=_users.c.balance.type)  # kopecks, no discount
    units = bindparam("op_units", type_=Integer)
    now = bindparam("now", type_=_holdings.c.ends_at.type)
    user_id = bindparam("for_user", type_=_users.c.id.type)
    kind = bindparam("op_kind", type_=_operations.c.type.type)
    on_plan_sources = [ledger.const(source) for source in PLAN_FUNDED]
    zero, one = ledger.const(0), ledger.const(1)
    active = ledger.const(HoldingStatus.ACTIVE.value)

    def old(_: Any) -> Any:
        u, h = _users, _holdings
        # The user's subscription (at most one active: a partial unique index).
        sub = h.alias("sub")
        # The package a charge would take from: enough units, oldest expiry first.
        pkg = (
            select(h.c.id)
            .where(
                h.c.user_id == user_id,
                h.c.status == active,
                h.c.kind == ledger.const(PlanKind.PACKAGE.value),
                h.c.units_left >= units,
                or_(h.c.ends_at.is_(None), h.c.ends_at > now),
            )
            .order_by(h.c.ends_at.asc().nulls_last(), h.c.id)
            .limit(1)
            .subquery("pkg")
        )
        # What the user holds: the default plan and the plans of the active holdings (one
        # past its end still counts as due for its roll-over, not for access or discount).
        held = union_all(
            select(_plans.c.discount_percent, _plans.c.unlocks, null().label("ends_at")).where(
                _plans.c.is_default
            ),
            select(_plans.c.discount_percent, _plans.c.unlocks, h.c.ends_at)
            .select_from(h.join(_plans, _plans.c.id == h.c.plan_id))
            .where(h.c.user_id == user_id, h.c.status == active),
        ).subquery("held")
        live = or_(held.c.ends_at.is_(None), held.c.ends_at > now)
        plans = select(
            func.coalesce(func.max(case((live, held.c.discount_percent))), zero).label("discount"),
            func.coalesce(
                func.max(case((and_(live, _unlocked(dialect, held.c.unlocks, kind)), one))),
                zero,
            ).label("allowed"),
            func.coalesce(func.max(case((held.c.ends_at <= now, one))), zero).label("due"),
        ).subquery("plans")
        price_due = (
            price * (ledger.const(100) - plans.c.discount) + ledger.const(50)
        ) // ledger.const(100)
        covers = {
            Funding.FREE.value: u.c.free_operations_left >= one,
            Funding.SUBSCRIPTION.value: and_(
                sub.c.id.is_not(None),
                or_(sub.c.ends_at.is_(None), sub.c.ends_at > now),
                sub.c.units_left >= units,
            ),
            Funding.PACKAGE.value: pkg.c.id.is_not(None),
            Funding.BALANCE.value: u.c.balance >= price_due,
        }
        if paid:
            whens = [(covers[source], source) for source in order]
            funding = {  # a 100 % discount makes the balance pay nothing: a free operation
                s: case(
                    (price_due == zero, ledger.const(Funding.NONE.value)), else_=ledger.const(s)
                )
                if s == Funding.BALANCE.value
                else ledger.const(s)
                for _, s in whens
            }
            src = case(*((cond, funding[s]) for cond, s in whens), else_=null())
            # The holding of the first source that covers (None for free / balance).
            holding = case(
                *(
                    (
                        cond,
                        sub.c.id
                        if s == Funding.SUBSCRIPTION.value
                        else pkg.c.id
                        if s == Funding.PACKAGE.value
                        else null(),
                    )
                    for cond, s in whens
                ),
                else_=null(),
            )
        else:
            src = ledger.const(Funding.NONE.value)
            holding = cast(null(), _holdings.c.id.type)  # typed: compared with ids later
        renew_due = bindparam("free_due_before", type_=_users.c.created_at.type)
        due = or_(
            plans.c.due == one,
            and_(
                renew_due.is_not(None),
                func.coalesce(u.c.free_renewed_at, u.c.created_at) <= renew_due,
            ),
        )
        return (
            select(
                u.c.id,
                u.c.free_operations_left.label("free"),
                u.c.balance,
                u.c.free_operations_granted.label("granted"),
                src.label("src"),
                price_due.label("price"),
                holding.label("holding"),
                sub.c.period_no.label("period_no"),
                (plans.c.allowed == one).label("allowed"),
                due.label("due"),
                and_(
                    plans.c.allowed == one,
                    or_(not_(due), bindparam("ignore_due", type_=Boolean)),
                ).label("go"),
            )
            .select_from(
                u.outerjoin(
                    sub,
                    and_(
                        sub.c.user_id == u.c.id,
                        sub.c.kind == ledger.const(PlanKind.SUBSCRIPTION.value),
                        sub.c.status == active,
                    ),
                )
                .outerjoin(pkg, true())
                .join(plans, true())
            )
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
                h.c.units_left >= units,
                or_(h.c.ends_at.is_(None), h.c.ends_at > now),
                or_(
                    h.c.kind == ledger.const(PlanKind.PACKAGE.value),
                    h.c.period_no == was.period_no,
                ),
            )
            .values(units_left=h.c.units_left - units)
            .returning(h.c.id, h.c.units_left, h.c.period_no)
        )

    def debit(p: Any) -> Any:
        was, took = p["old"], p["held"]
        src = was.src
        return ledger.balance_step(
            was.id,
            amount=-case((src == ledger.const(Funding.BALANCE.value), was.price), else_=zero),
            free_delta=-case((src == ledger.const(Funding.FREE.value), one), else_=zero),
            conditions=(
                was.go,
                src.is_not(None),
                case(
                    (
                        src == ledger.const(Funding.FREE.value),
                        _users.c.free_operations_left >= one,
                    ),
                    (src == ledger.const(Funding.BALANCE.value), _users.c.balance >= was.price),
                    (src.in_(on_plan_sources), took.id.is_not(None)),
                    else_=true(),
                ),
            ),
        )

    def operation(p: Any) -> Any:
        was, took, debited = p["old"], p["held"], p["debit"]
        c = _operations.c
        values = {
            "user_id": debited.id,
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
            "units": units,
            "period_no": case(
                (was.src == ledger.const(Funding.SUBSCRIPTION.value), took.period_no),
                else_=null(),
            ),
        }
        return (
            ledger.insert_or_skip(dialect, c.request_key)
            .from_select(
                list(values),
                # (the condition joins the two steps' rows: one each)
                select(*(v.label(k) for k, v in values.items())).where(debited.id == was.id),
                include_defaults=False,
            )
            .returning(c.id, c.user_id, c.price, c.funding, c.key_token, c.holding_id, c.units)
        )

    def entry(p: Any) -> Any:
        op, took = p["operation"], p["held"]
        on_plan = op.funding.in_(on_plan_sources)
        return ledger.entry(
            p["debit"],
            kind=LedgerKind.CHARGE,
            amount=-op.price,
            free_delta=case(
                (op.funding == ledger.const(Funding.FREE.value), ledger.const(-1)),
                else_=zero,
            ),
            units_delta=case((on_plan, -op.units), else_=zero),
            units_after=case((on_plan, took.units_left), else_=null()),
            holding_id=op.holding_id,
            key=ledger.key_of("charge:", op.id),
            operation_id=op.id,
            where=and_(
                op.user_id == p["debit"].id, op.funding != ledger.const(Funding.NONE.value)
            ),
        )

    return ledger.Chain(
        ledger.Step("old", old),
        ledger.Step("held", held, optional=True),
        ledger.Step("debit", debit),
        ledger.Step("operation", operation),
        ledger.Step("entry", entry),
    )


_CHARGES: dict[tuple[str, bool, tuple[str, ...]], ledger.Chain] = {}
_ROLL_OVER: list[Any] = []  # billing.plans.roll_over, looked up once (None: not there)


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
    """
    kind = operation_type(op_type).value
    units = units_of(kind, settings)
    price = units * settings.price_kopecks
    deadline_at = utcnow() + timedelta(seconds=operation_deadline_seconds(settings, queued=True))
    dialect = ledger.dialect_of(session)
    order = tuple(settings.SPENDING_ORDER)
    chain = _CHARGES.get((dialect, units > 0, order))
    if chain is None:
        chain = _CHARGES[dialect, units > 0, order] = _charge_chain(
            dialect, paid=units > 0, order=order
        )
    roll_over = _roll_over()
    ignore_due = roll_over is None
    now = utcnow()
    renew_days = settings.FREE_OPERATIONS_RENEW_DAYS
    rolled: tuple[Any, ...] = ()
    for _ in range(CHARGE_TRIES):
        rows = await chain.run(
            session,
            for_user=user_id,
            full_price=price,
            op_units=units,
            op_kind=kind,
            now=now,
            ignore_due=ignore_due,
            free_due_before=None if renew_days is None else now - timedelta(days=renew_days),
            request_key=request_key,
            chat_id=chat_id,
            input_ref=input_ref,
            deadline_at=deadline_at,
            key_token=new_key_token(),
        )
        was, took, paid, op = rows["old"], rows["held"], rows["debit"], rows["operation"]
        if was is None:
            raise UserNotFound(user_id)
        if not was.allowed:
            raise OperationLocked(kind)
        if was.due and not ignore_due:
            rolled = tuple(await roll_over(session, settings, user_id=user_id, now=now))
            ignore_due = True  # rolled over: what is still "due" is not ours to wait for
            continue
        if paid is None and was.src in PLAN_FUNDED and took is None:
            now = utcnow()
            continue  # the holding was spent (or rolled) meanwhile: nothing written, again
        if paid is None or op is None:
            # Nothing paid, or paid twice for one update: a re-delivery is a duplicate (roll
            # back), not a reason to show a re-delivering user the top-up screen.
            existing = None
            if request_key is not None:
                existing = await session.scalar(
                    select(Operation.id).where(Operation.request_key == request_key)
                )
            if existing is not None or paid is not None:
                raise DuplicateRequest(request_key or "", existing)
            raise InsufficientFunds(
                price=was.price, balance=was.balance, free_left=was.free, free_granted=was.granted
            )
        return ChargeResult(
            operation_id=op.id,
            user_id=user_id,
            op_type=kind,
            price=op.price,
            funding=Funding(op.funding),
            balance_after=paid.balance,
            free_after=paid.free_operations_left,
            key_token=op.key_token,
            units=op.units,
            holding_id=op.holding_id,
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


def _claim_values(deadline_seconds: int | None) -> dict[str, Any]:
    values: dict[str, Any] = {
        "status": OperationStatus.RUNNING.value,
        "attempts": Operation.attempts + 1,
        "started_at": utcnow(),
    }
    if deadline_seconds is not None:
        values["deadline_at"] = utcnow() + timedelta(seconds=deadline_seconds)
    return values


def _this_operation(operation_id: int, key_token: str | None) -> list[Any]:
    """The row a job may claim: with the job's ``key_token``, only the operation the job was
    queued for (a job left in Redis by a database that started again names another)."""
    conditions = [Operation.id == operation_id, Operation.status.in_(ACTIVE)]
    if key_token is not None:
        conditions.append(Operation.key_token == key_token)
    return conditions


async def start_operation(
    session: AsyncSession,
    *,
    operation_id: int,
    deadline_seconds: int | None = None,
    key_token: str | None = None,
) -> bool:
    """Queued → running (or a retry of running). False if it already has an outcome (or,
    with ``key_token``, is not the operation of that token)."""
    result = await session.execute(
        update(Operation)
        .where(*_this_operation(operation_id, key_token))
        .values(**_claim_values(deadline_seconds))
        .returning(Operation.id)
    )
    return result.scalar_one_or_none() is not None


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
    User.telegram_id,
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


async def claim_operation(
    session: AsyncSession,
    *,
    operation_id: int,
    deadline_seconds: int | None = None,
    key_token: str | None = None,
) -> Any | None:
    """:func:`start_operation` in the same one conditional statement that also returns
    ``CLAIMED_COLUMNS`` (the operation and its user's balance right after the claim): a
    job's claim is one round trip. None if the operation already has an outcome.

    Elsewhere (SQLite's RETURNING names only the updated table): the claim and a read of
    the row, in the caller's transaction."""
    if session.get_bind().dialect.name != "postgresql":
        claimed = await start_operation(
            session,
            operation_id=operation_id,
            deadline_seconds=deadline_seconds,
            key_token=key_token,
        )
        return await claimed_operation(session, operation_id=operation_id) if claimed else None
    result = await session.execute(
        update(Operation)
        .where(*_this_operation(operation_id, key_token), User.id == Operation.user_id)
        .values(**_claim_values(deadline_seconds))
        .returning(*CLAIMED_COLUMNS)
        .execution_options(synchronize_session=False)
    )
    return result.one_or_none()


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
