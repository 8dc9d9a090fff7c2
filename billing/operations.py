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
from typing import Any

from sqlalchemy import JSON, and_, bindparam, case, false, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing import ledger
from billing.errors import (
    DuplicateRequest,
    InsufficientFunds,
    OperationDelivered,
    OperationNotFound,
    OperationNotRefundable,
    UserNotFound,
)
from billing.models import (
    Funding,
    LedgerKind,
    Operation,
    OperationStatus,
    User,
    new_key_token,
    utcnow,
)
from billing.prices import operation_type, price_for
from billing.settings import Settings, operation_deadline_seconds

ACTIVE = (OperationStatus.QUEUED, OperationStatus.RUNNING)

_users = User.__table__
_operations = Operation.__table__


@dataclass(frozen=True)
class ChargeResult:
    operation_id: int
    user_id: int
    op_type: str
    price: int  # kopecks actually taken from the balance (0 when free)
    funding: Funding
    balance_after: int
    free_after: int
    key_token: str  # the operation's: names its job and Redis keys (jobqueue.queue)


@dataclass(frozen=True)
class RefundResult:
    operation_id: int
    user_id: int
    funding: Funding
    amount: int  # kopecks given back (0 for a free operation)
    free_back: int  # free operations given back
    balance_after: int
    free_after: int


def _charge_chain(dialect: str, *, paid: bool) -> ledger.Chain:
    """The charge's steps (see :func:`charge`); ``paid``: the type has a price."""
    price = bindparam("price", type_=_users.c.balance.type)

    def old(_: Any) -> Any:
        return (
            select(
                _users.c.id,
                _users.c.free_operations_left.label("free"),
                _users.c.balance,
                _users.c.free_operations_granted.label("granted"),
            )
            .where(_users.c.id == bindparam("user_id", type_=_users.c.id.type))
            .with_for_update()
        )

    def debit(p: Any) -> Any:
        was = p["old"]
        zero, one = ledger.const(0), ledger.const(1)
        take_free = was.free > zero if paid else false()
        return ledger.balance_step(
            was.id,
            amount=-case((take_free, zero), else_=price),
            free_delta=-case((take_free, one), else_=zero),
            # A free type is served whatever the balance (even a debt).
            conditions=(take_free | (was.balance >= price),) if paid else (),
        ).returning(take_free.label("used_free"))

    def operation(p: Any) -> Any:
        debited = p["debit"]
        funding = Funding.BALANCE if paid else Funding.NONE
        c = _operations.c
        values = {
            "user_id": debited.id,
            "type": bindparam("kind", type_=c.type.type),
            "price": case((debited.used_free, ledger.const(0)), else_=price),
            "funding": case(
                (debited.used_free, ledger.const(Funding.FREE.value)),
                else_=ledger.const(funding.value),
            ),
            "status": ledger.const(OperationStatus.QUEUED.value),
            "request_key": bindparam("request_key", type_=c.request_key.type),
            "chat_id": bindparam("chat_id", type_=c.chat_id.type),
            # None is SQL NULL, as the ORM writes an unset input.
            "input_ref": bindparam("input_ref", type_=JSON(none_as_null=True)),
            "deadline_at": bindparam("deadline_at", type_=c.deadline_at.type),
            "attempts": ledger.const(0),
            # Given: a CTE would not evaluate the column's Python default.
            "key_token": bindparam("key_token", type_=c.key_token.type),
        }
        return (
            ledger.insert_or_skip(dialect, c.request_key)
            .from_select(
                list(values),
                select(*(v.label(k) for k, v in values.items())),
                include_defaults=False,
            )
            .returning(c.id, c.user_id, c.price, c.funding, c.key_token)
        )

    def entry(p: Any) -> Any:
        op = p["operation"]
        return ledger.entry(
            p["debit"],
            kind=LedgerKind.CHARGE,
            amount=-op.price,
            free_delta=case(
                (op.funding == ledger.const(Funding.FREE.value), ledger.const(-1)),
                else_=ledger.const(0),
            ),
            key=ledger.key_of("charge:", op.id),
            operation_id=op.id,
            where=and_(
                op.user_id == p["debit"].id, op.funding != ledger.const(Funding.NONE.value)
            ),
        )

    return ledger.Chain(
        ledger.Step("old", old),
        ledger.Step("debit", debit),
        ledger.Step("operation", operation),
        ledger.Step("entry", entry),
    )


_CHARGES: dict[tuple[str, bool], ledger.Chain] = {}


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
    """Pay for one operation: a free operation if any is left, else the price from the balance.

    Raises ``InsufficientFunds`` (nothing written), ``DuplicateRequest`` when the same
    Telegram update was already charged (roll back: the debit is undone with it),
    ``UnknownOperationType``, ``UserNotFound``.

    One chain (:mod:`billing.ledger`), one round trip on PostgreSQL: lock the user's row,
    take a free operation if one is left else the price if the balance covers it, write the
    operation (``ON CONFLICT`` on the request key: a re-delivered update inserts nothing)
    and its ledger entry. The lock re-reads the row a concurrent charge just committed, so
    the decision is made on the newest balance.
    """
    kind = operation_type(op_type).value
    price = price_for(kind, settings)
    deadline_at = utcnow() + timedelta(seconds=operation_deadline_seconds(settings, queued=True))
    dialect = ledger.dialect_of(session)
    chain = _CHARGES.get((dialect, price > 0))
    if chain is None:
        chain = _CHARGES[dialect, price > 0] = _charge_chain(dialect, paid=price > 0)
    rows = await chain.run(
        session,
        user_id=user_id,
        price=price,
        kind=kind,
        request_key=request_key,
        chat_id=chat_id,
        input_ref=input_ref,
        deadline_at=deadline_at,
        key_token=new_key_token(),
    )
    was, paid, op = rows["old"], rows["debit"], rows["operation"]
    if was is None:
        raise UserNotFound(user_id)
    if paid is None or op is None:
        # Nothing paid, or paid twice for one update: a re-delivery is a duplicate (roll back),
        # not a reason to show a re-delivering user the top-up screen.
        existing = None
        if request_key is not None:
            existing = await session.scalar(
                select(Operation.id).where(Operation.request_key == request_key)
            )
        if existing is not None or paid is not None:
            raise DuplicateRequest(request_key or "", existing)
        raise InsufficientFunds(
            price=price, balance=was.balance, free_left=was.free, free_granted=was.granted
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
    )


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
)
_CLAIMED_OPERATION = [c.key for c in CLAIMED_COLUMNS if c.class_ is Operation]
_CLAIMED_USER = [c.key for c in CLAIMED_COLUMNS if c.class_ is User]
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
            .returning(*(c[key] for key in _CLAIMED_OPERATION))
        )

    def user(p: Any) -> Any:
        # Read in the claim's statement on PostgreSQL (its snapshot, as the UPDATE ... FROM
        # users was), after it in the same transaction on SQLite; the claim moves no money.
        return select(*(_users.c[key] for key in _CLAIMED_USER)).where(
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
        *(getattr(claimed, key) for key in _CLAIMED_OPERATION),
        *(getattr(user, key) for key in _CLAIMED_USER),
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
    get one refund). A free operation comes back as a free operation, money as money.
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
    refunded = {
        "amount": lambda v: case((v.funding == Funding.BALANCE.value, v.price), else_=0),
        "free_back": lambda v: case((v.funding == Funding.FREE.value, 1), else_=0),
    }
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
                    finished_at=utcnow(),
                )
                .returning(_operations.c.user_id, _operations.c.funding, _operations.c.price),
            ),
            # A free operation comes back as a free operation, money as money; a free type
            # (funding "none") moves nothing and has no entry.
            ledger.Step(
                "moved",
                lambda p: ledger.balance_step(
                    p["voided"].user_id,
                    amount=refunded["amount"](p["voided"]),
                    free_delta=refunded["free_back"](p["voided"]),
                ),
            ),
            ledger.Step(
                "entry",
                lambda p: ledger.entry(
                    p["moved"],
                    kind=LedgerKind.REFUND,
                    amount=refunded["amount"](p["voided"]),
                    free_delta=refunded["free_back"](p["voided"]),
                    key=f"refund:{operation_id}",
                    operation_id=operation_id,
                    where=and_(
                        p["moved"].id == p["voided"].user_id,
                        p["voided"].funding != Funding.NONE.value,
                    ),
                ),
            ),
        ],
    )
    voided, moved = rows["voided"], rows["moved"]
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
    return RefundResult(
        operation_id=operation_id,
        user_id=voided.user_id,
        funding=funding,
        amount=voided.price if funding is Funding.BALANCE else 0,
        free_back=1 if funding is Funding.FREE else 0,
        balance_after=moved.balance,
        free_after=moved.free_operations_left,
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
