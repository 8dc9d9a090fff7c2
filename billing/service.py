"""The billing core: every change of money or free operations, with its ledger entry.

Each function takes a session, adds and flushes, and never commits: the caller owns the
transaction, so a charge, its operation row and its ledger entry commit together or not at
all. Once-only guarantees come from unique keys and conditional updates (``UPDATE ... WHERE
status IN (...)``, ``... WHERE balance >= :price``), never from reading first and writing
later. After a ``BillingError`` the caller rolls back.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from billing import notices
from billing.bounds import INT32_MAX, INT64_MAX, MAX_FREE_ADJUST
from billing.errors import (
    AmountOutOfRange,
    DuplicateRequest,
    InsufficientFunds,
    InvalidAmount,
    OperationDelivered,
    OperationNotFound,
    OperationNotRefundable,
    PaymentMismatch,
    PaymentNotCreditable,
    PaymentNotFound,
    UserNotFound,
)
from billing.models import (
    Funding,
    LedgerEntry,
    LedgerKind,
    NoticeKind,
    Operation,
    OperationStatus,
    Payment,
    PaymentStatus,
    User,
    utcnow,
)
from billing.prices import operation_type, price_for
from billing.settings import Settings, operation_deadline_seconds

ACTIVE = (OperationStatus.QUEUED, OperationStatus.RUNNING)
CREDITABLE = (PaymentStatus.PENDING, PaymentStatus.WAITING_FOR_CAPTURE, PaymentStatus.FAILED)


@dataclass(frozen=True)
class UserState:
    id: int
    telegram_id: int
    balance: int
    free_left: int
    free_granted: int
    language: str | None = None
    email: str | None = None


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


@dataclass(frozen=True)
class CreditResult:
    payment_id: int
    user_id: int
    telegram_id: int
    amount: int
    balance_after: int


@dataclass(frozen=True)
class Summary:
    user: UserState
    recent: list[dict[str, Any]] = field(default_factory=list)


def _insert(session: AsyncSession, model: type) -> Any:
    """INSERT with ON CONFLICT support for the dialect in use."""
    dialect = session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(model)


_USER_COLUMNS = (
    User.id,
    User.telegram_id,
    User.balance,
    User.free_operations_left,
    User.free_operations_granted,
    User.language,
    User.email,
    User.username,
)


def _state(row: Any) -> UserState:
    return UserState(
        id=row.id,
        telegram_id=row.telegram_id,
        balance=row.balance,
        free_left=row.free_operations_left,
        free_granted=row.free_operations_granted,
        language=row.language,
        email=row.email,
    )


async def _ledger(
    session: AsyncSession,
    *,
    user_id: int,
    kind: LedgerKind,
    amount: int,
    free_delta: int,
    balance_after: int,
    free_after: int,
    key: str,
    operation_id: int | None = None,
    payment_id: int | None = None,
    reason: str | None = None,
) -> None:
    # A plain Core INSERT: the dialects' ON CONFLICT-capable inserts (``_insert``) are not
    # cacheable in SQLAlchemy (``inherit_cache = False``), so each would be compiled anew.
    await session.execute(
        insert(LedgerEntry.__table__).values(
            user_id=user_id,
            kind=kind.value,
            amount=amount,
            free_delta=free_delta,
            balance_after=balance_after,
            free_after=free_after,
            operation_id=operation_id,
            payment_id=payment_id,
            idempotency_key=key,
            reason=reason,
        )
    )


# --- users -----------------------------------------------------------------------------


async def get_or_create_user(
    session: AsyncSession,
    *,
    telegram_id: int,
    free_operations: int,
    username: str | None = None,
    language: str | None = None,
) -> tuple[UserState, bool]:
    """Find the user by Telegram id or create them with their free operations.

    Two concurrent first messages create one user: the insert is ``ON CONFLICT DO NOTHING``
    on the unique telegram_id, and only the inserting transaction writes the signup entry.
    """
    if free_operations < 0:
        raise InvalidAmount(free_operations, "free operations must be 0 or more")
    row = (
        await session.execute(select(*_USER_COLUMNS).where(User.telegram_id == telegram_id))
    ).one_or_none()
    if row is None:
        inserted = (
            await session.execute(
                _insert(session, User)
                .values(
                    telegram_id=telegram_id,
                    username=username,
                    language=language,
                    balance=0,
                    free_operations_left=free_operations,
                    free_operations_granted=free_operations,
                )
                .on_conflict_do_nothing(index_elements=[User.telegram_id])
                .returning(*_USER_COLUMNS)
            )
        ).one_or_none()
        if inserted is not None:
            if free_operations:
                await _ledger(
                    session,
                    user_id=inserted.id,
                    kind=LedgerKind.SIGNUP,
                    amount=0,
                    free_delta=free_operations,
                    balance_after=0,
                    free_after=free_operations,
                    key=f"signup:{inserted.id}",
                )
            return _state(inserted), True
        row = (
            await session.execute(select(*_USER_COLUMNS).where(User.telegram_id == telegram_id))
        ).one()
    if (username is not None and username != row.username) or (
        language is not None and language != row.language
    ):
        await session.execute(
            update(User)
            .where(User.id == row.id)
            .values(username=username or row.username, language=language or row.language)
        )
    return _state(row), False


async def get_user(session: AsyncSession, *, user_id: int) -> UserState:
    row = (await session.execute(select(*_USER_COLUMNS).where(User.id == user_id))).one_or_none()
    if row is None:
        raise UserNotFound(user_id)
    return _state(row)


async def find_user_by_telegram_id(session: AsyncSession, telegram_id: int) -> UserState | None:
    row = (
        await session.execute(select(*_USER_COLUMNS).where(User.telegram_id == telegram_id))
    ).one_or_none()
    return _state(row) if row is not None else None


async def set_email(session: AsyncSession, *, user_id: int, email: str) -> None:
    await session.execute(update(User).where(User.id == user_id).values(email=email))


# --- operations ------------------------------------------------------------------------


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
    """
    kind = operation_type(op_type)
    price = price_for(kind, settings)
    if price > 0 and session.get_bind().dialect.name == "postgresql":
        return await _charge_postgresql(
            session,
            settings,
            user_id=user_id,
            kind=kind.value,
            price=price,
            request_key=request_key,
            chat_id=chat_id,
            input_ref=input_ref,
        )
    if request_key is not None:
        existing = await session.scalar(
            select(Operation.id).where(Operation.request_key == request_key)
        )
        if existing is not None:
            raise DuplicateRequest(request_key, existing)

    returning = (User.balance, User.free_operations_left, User.free_operations_granted)
    amount, free_delta = 0, 0
    if price == 0:
        funding = Funding.NONE
        row = (await session.execute(select(*returning).where(User.id == user_id))).one_or_none()
        if row is None:
            raise UserNotFound(user_id)
    else:
        funding = Funding.FREE
        free_delta = -1
        row = (
            await session.execute(
                update(User)
                .where(User.id == user_id, User.free_operations_left > 0)
                .values(free_operations_left=User.free_operations_left - 1)
                .returning(*returning)
            )
        ).one_or_none()
        if row is None:
            funding, amount, free_delta = Funding.BALANCE, -price, 0
            row = (
                await session.execute(
                    update(User)
                    .where(User.id == user_id, User.balance >= price)
                    .values(balance=User.balance - price)
                    .returning(*returning)
                )
            ).one_or_none()
        if row is None:
            user = await get_user(session, user_id=user_id)
            raise InsufficientFunds(
                price=price,
                balance=user.balance,
                free_left=user.free_left,
                free_granted=user.free_granted,
            )

    now = utcnow()
    inserted = (
        await session.execute(
            _insert(session, Operation)
            .values(
                user_id=user_id,
                type=kind.value,
                price=-amount,
                funding=funding.value,
                status=OperationStatus.QUEUED.value,
                request_key=request_key,
                chat_id=chat_id,
                input_ref=input_ref,
                deadline_at=now
                + timedelta(seconds=operation_deadline_seconds(settings, queued=True)),
            )
            .on_conflict_do_nothing(index_elements=[Operation.request_key])
            .returning(Operation.id, Operation.key_token)
        )
    ).one_or_none()
    if inserted is None:  # a concurrent delivery of the same update won the race
        raise DuplicateRequest(request_key or "", None)
    operation_id = inserted.id
    if funding is not Funding.NONE:
        await _ledger(
            session,
            user_id=user_id,
            kind=LedgerKind.CHARGE,
            amount=amount,
            free_delta=free_delta,
            balance_after=row.balance,
            free_after=row.free_operations_left,
            key=f"charge:{operation_id}",
            operation_id=operation_id,
        )
    return ChargeResult(
        operation_id=operation_id,
        user_id=user_id,
        op_type=kind.value,
        price=-amount,
        funding=funding,
        balance_after=row.balance,
        free_after=row.free_operations_left,
        key_token=inserted.key_token,
    )


# On PostgreSQL the whole charge is one statement, one round trip: lock the user row, take a
# free operation if one is left else the price if the balance covers it, write the operation
# (ON CONFLICT on the request key: a re-delivered update inserts nothing) and its ledger
# entry. The FOR UPDATE re-reads the row a concurrent charge just committed, so the decision
# is made on the newest balance; no row comes back when the user cannot pay.
_CHARGE_SQL = text(
    """
WITH old AS (
    SELECT id, free_operations_left AS free, balance FROM users WHERE id = :user_id FOR UPDATE
), debit AS (
    UPDATE users
    SET free_operations_left = users.free_operations_left
            - CASE WHEN old.free > 0 THEN 1 ELSE 0 END,
        balance = users.balance - CASE WHEN old.free > 0 THEN 0 ELSE :price END,
        updated_at = now()
    FROM old
    WHERE users.id = old.id AND (old.free > 0 OR old.balance >= :price)
    RETURNING users.id, users.balance, users.free_operations_left, old.free > 0 AS used_free
), op AS (
    INSERT INTO operations (user_id, type, price, funding, status, request_key, chat_id,
                            input_ref, deadline_at, attempts, created_at, updated_at)
    SELECT debit.id, :kind, CASE WHEN used_free THEN 0 ELSE :price END,
           CASE WHEN used_free THEN 'free' ELSE 'balance' END, 'queued', :request_key,
           :chat_id, CAST(:input_ref AS json), now() + make_interval(secs => :deadline), 0,
           now(), now()
    FROM debit
    ON CONFLICT (request_key) DO NOTHING
    RETURNING id, price, funding, key_token
), entry AS (
    INSERT INTO ledger_entries (user_id, kind, amount, free_delta, balance_after, free_after,
                                operation_id, idempotency_key, created_at)
    SELECT debit.id, 'charge', -op.price, CASE WHEN op.funding = 'free' THEN -1 ELSE 0 END,
           debit.balance, debit.free_operations_left, op.id, 'charge:' || op.id, now()
    FROM debit, op
    RETURNING id
)
SELECT debit.balance, debit.free_operations_left, op.id AS operation_id, op.price, op.funding,
       op.key_token
FROM debit LEFT JOIN op ON true
"""
)


async def _charge_postgresql(
    session: AsyncSession,
    settings: Settings,
    *,
    user_id: int,
    kind: str,
    price: int,
    request_key: str | None,
    chat_id: int | None,
    input_ref: dict[str, Any] | None,
) -> ChargeResult:
    row = (
        await session.execute(
            _CHARGE_SQL,
            {
                "user_id": user_id,
                "price": price,
                "kind": kind,
                "request_key": request_key,
                "chat_id": chat_id,
                "input_ref": json.dumps(input_ref) if input_ref is not None else None,
                "deadline": float(operation_deadline_seconds(settings, queued=True)),
            },
        )
    ).one_or_none()
    if row is None or row.operation_id is None:
        # Nothing paid, or paid twice for one update: a re-delivery is a duplicate (roll back),
        # not a reason to show a re-delivering user the top-up screen.
        existing = None
        if request_key is not None:
            existing = await session.scalar(
                select(Operation.id).where(Operation.request_key == request_key)
            )
        if existing is not None or row is not None:
            raise DuplicateRequest(request_key or "", existing)
        user = await get_user(session, user_id=user_id)
        raise InsufficientFunds(
            price=price,
            balance=user.balance,
            free_left=user.free_left,
            free_granted=user.free_granted,
        )
    return ChargeResult(
        operation_id=row.operation_id,
        user_id=user_id,
        op_type=kind,
        price=row.price,
        funding=Funding(row.funding),
        balance_after=row.balance,
        free_after=row.free_operations_left,
        key_token=row.key_token,
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
    voided = (
        await session.execute(
            update(Operation)
            .where(*conditions)
            .values(
                status=case(
                    (Operation.funding == Funding.NONE.value, OperationStatus.FAILED.value),
                    else_=OperationStatus.REFUNDED.value,
                ),
                error=(error or "")[:2000] or None,
                finished_at=utcnow(),
            )
            .returning(Operation.user_id, Operation.funding, Operation.price)
        )
    ).one_or_none()
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
    amount, free_back = 0, 0
    if funding is Funding.BALANCE:
        amount = voided.price
        values: dict[str, Any] = {"balance": User.balance + amount}
    elif funding is Funding.FREE:
        free_back = 1
        values = {"free_operations_left": User.free_operations_left + 1}
    else:
        user = await get_user(session, user_id=voided.user_id)
        return RefundResult(
            operation_id, voided.user_id, funding, 0, 0, user.balance, user.free_left
        )
    row = (
        await session.execute(
            update(User)
            .where(User.id == voided.user_id)
            .values(**values)
            .returning(User.balance, User.free_operations_left)
        )
    ).one()
    await _ledger(
        session,
        user_id=voided.user_id,
        kind=LedgerKind.REFUND,
        amount=amount,
        free_delta=free_back,
        balance_after=row.balance,
        free_after=row.free_operations_left,
        key=f"refund:{operation_id}",
        operation_id=operation_id,
    )
    return RefundResult(
        operation_id=operation_id,
        user_id=voided.user_id,
        funding=funding,
        amount=amount,
        free_back=free_back,
        balance_after=row.balance,
        free_after=row.free_operations_left,
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


# --- payments --------------------------------------------------------------------------


async def create_payment(
    session: AsyncSession,
    *,
    user_id: int,
    amount: int,
    currency: str,
    description: str | None = None,
    idempotence_key: str | None = None,
) -> Payment:
    """The pending row, written (and committed by the caller) before YooKassa is called."""
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise InvalidAmount(amount)
    if amount > INT64_MAX:
        raise AmountOutOfRange(amount, INT64_MAX)
    payment = Payment(
        user_id=user_id,
        amount=amount,
        currency=currency,
        description=description,
        idempotence_key=idempotence_key or uuid.uuid4().hex,
        status=PaymentStatus.PENDING.value,
    )
    session.add(payment)
    await session.flush()
    return payment


async def attach_provider_payment(
    session: AsyncSession,
    *,
    payment_id: int,
    yookassa_payment_id: str,
    confirmation_url: str | None,
    status: str,
    raw: dict[str, Any] | None = None,
) -> None:
    """Record YooKassa's answer to the create call (a failed row comes back to pending)."""
    new_status = (
        status if status in (PaymentStatus.PENDING, PaymentStatus.WAITING_FOR_CAPTURE) else None
    )
    values: dict[str, Any] = {
        "yookassa_payment_id": yookassa_payment_id,
        "confirmation_url": confirmation_url,
        "raw": raw,
    }
    if new_status is not None:
        values["status"] = case(
            (Payment.status == PaymentStatus.FAILED.value, new_status), else_=Payment.status
        )
    await session.execute(
        update(Payment)
        .where(
            Payment.id == payment_id,
            (Payment.yookassa_payment_id.is_(None))
            | (Payment.yookassa_payment_id == yookassa_payment_id),
        )
        .values(**values)
    )


async def mark_payment_failed(session: AsyncSession, *, payment_id: int, reason: str) -> bool:
    result = await session.execute(
        update(Payment)
        .where(Payment.id == payment_id, Payment.status == PaymentStatus.PENDING.value)
        .values(status=PaymentStatus.FAILED.value, cancellation_reason=reason[:64])
        .returning(Payment.id)
    )
    return result.scalar_one_or_none() is not None


async def mark_payment_canceled(
    session: AsyncSession,
    *,
    payment_id: int,
    reason: str | None,
    raw: dict[str, Any] | None = None,
) -> bool:
    """Canceled is final; a succeeded payment is never canceled (YooKassa's rules).

    The call that cancels also records the user's message (``billing.notices``)."""
    row = (
        await session.execute(
            update(Payment)
            .where(
                Payment.id == payment_id,
                Payment.status.in_(CREDITABLE),
                Payment.credited_at.is_(None),
            )
            .values(
                status=PaymentStatus.CANCELED.value,
                cancellation_reason=(reason or "")[:64] or None,
                raw=raw,
            )
            .returning(Payment.user_id, Payment.amount)
        )
    ).one_or_none()
    if row is None:
        return False
    await notices.add(
        session,
        key=notices.canceled_key(payment_id),
        kind=NoticeKind.CANCELED,
        payment_id=payment_id,
        user_id=row.user_id,
        amount=row.amount,
        reason=reason,
    )
    return True


async def mark_payment_waiting(session: AsyncSession, *, payment_id: int) -> bool:
    result = await session.execute(
        update(Payment)
        .where(Payment.id == payment_id, Payment.status == PaymentStatus.PENDING.value)
        .values(status=PaymentStatus.WAITING_FOR_CAPTURE.value)
        .returning(Payment.id)
    )
    return result.scalar_one_or_none() is not None


async def credit_payment(
    session: AsyncSession,
    *,
    payment_id: int,
    amount: int,
    currency: str,
    yookassa_payment_id: str | None = None,
    raw: dict[str, Any] | None = None,
) -> CreditResult | None:
    """Credit a succeeded payment to the balance, exactly once.

    ``amount``/``currency``/``yookassa_payment_id`` are what YooKassa's API says; they must
    equal our row. Returns None when it was already credited. Raises ``PaymentNotFound``,
    ``PaymentMismatch`` or ``PaymentNotCreditable`` (canceled / refunded). The credit also
    records the user's "credited" message (``billing.notices``), in the same transaction.

    On PostgreSQL it writes with one SQL statement, so a Payment or User object the caller
    already loaded into this session is not refreshed (no caller keeps one).
    """
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise InvalidAmount(amount)
    if session.get_bind().dialect.name == "postgresql":
        credited = await _credit_postgresql(
            session,
            payment_id=payment_id,
            amount=amount,
            currency=currency,
            yookassa_payment_id=yookassa_payment_id,
            raw=raw,
        )
    else:
        credited = await _credit_generic(
            session,
            payment_id=payment_id,
            amount=amount,
            currency=currency,
            yookassa_payment_id=yookassa_payment_id,
            raw=raw,
        )
    if credited is None:
        await _why_not_credited(
            session,
            payment_id=payment_id,
            amount=amount,
            currency=currency,
            yookassa_payment_id=yookassa_payment_id,
        )
        return None
    return credited


async def _why_not_credited(
    session: AsyncSession,
    *,
    payment_id: int,
    amount: int,
    currency: str,
    yookassa_payment_id: str | None,
) -> None:
    """The conditional update matched no row: return if it was credited before, else raise."""
    row = (
        await session.execute(
            select(
                Payment.credited_at,
                Payment.amount,
                Payment.currency,
                Payment.yookassa_payment_id,
                Payment.status,
            ).where(Payment.id == payment_id)
        )
    ).one_or_none()
    if row is None:
        raise PaymentNotFound(payment_id)
    if row.credited_at is not None:
        return
    if row.amount != amount:
        raise PaymentMismatch(payment_id, "amount", row.amount, amount)
    if row.currency != currency:
        raise PaymentMismatch(payment_id, "currency", row.currency, currency)
    if yookassa_payment_id is not None and row.yookassa_payment_id not in (
        None,
        yookassa_payment_id,
    ):
        raise PaymentMismatch(
            payment_id, "yookassa_payment_id", row.yookassa_payment_id, yookassa_payment_id
        )
    raise PaymentNotCreditable(payment_id, row.status)


async def _credit_generic(
    session: AsyncSession,
    *,
    payment_id: int,
    amount: int,
    currency: str,
    yookassa_payment_id: str | None,
    raw: dict[str, Any] | None,
) -> CreditResult | None:
    conditions = [
        Payment.id == payment_id,
        Payment.status.in_(CREDITABLE),
        Payment.credited_at.is_(None),
        Payment.amount == amount,
        Payment.currency == currency,
    ]
    if yookassa_payment_id is not None:
        conditions.append(
            (Payment.yookassa_payment_id.is_(None))
            | (Payment.yookassa_payment_id == yookassa_payment_id)
        )
    values: dict[str, Any] = {
        "status": PaymentStatus.SUCCEEDED.value,
        "credited_at": utcnow(),
    }
    if yookassa_payment_id is not None:
        values["yookassa_payment_id"] = yookassa_payment_id
    if raw is not None:
        values["raw"] = raw
    won = (
        await session.execute(
            update(Payment).where(*conditions).values(**values).returning(Payment.user_id)
        )
    ).one_or_none()
    if won is None:
        return None
    user = (
        await session.execute(
            update(User)
            .where(User.id == won.user_id)
            .values(balance=User.balance + amount)
            .returning(User.balance, User.free_operations_left, User.telegram_id)
        )
    ).one()
    await _ledger(
        session,
        user_id=won.user_id,
        kind=LedgerKind.TOPUP,
        amount=amount,
        free_delta=0,
        balance_after=user.balance,
        free_after=user.free_operations_left,
        key=f"topup:{payment_id}",
        payment_id=payment_id,
    )
    await notices.add(
        session,
        key=notices.credited_key(payment_id),
        kind=NoticeKind.CREDITED,
        payment_id=payment_id,
        user_id=won.user_id,
        amount=amount,
        balance_after=user.balance,
    )
    return CreditResult(payment_id, won.user_id, user.telegram_id, amount, user.balance)


# On PostgreSQL the credit is one statement, one round trip, like the charge: the conditional
# status change of the payment (it is creditable, not credited yet, and amount, currency and
# YooKassa id match), the balance, the ledger entry with its unique key "topup:<id>", and the
# user's "credited" message in the outbox (billing.notices, unique key "credited:<id>"). When
# the payment does not qualify nothing is written and no row comes back.
_CREDIT_SQL = text(
    f"""
WITH won AS (
    UPDATE payments
    SET status = '{PaymentStatus.SUCCEEDED.value}',
        credited_at = :credited_at,
        yookassa_payment_id = COALESCE(CAST(:yookassa_payment_id AS VARCHAR),
                                       payments.yookassa_payment_id),
        raw = COALESCE(CAST(:raw AS JSON), payments.raw),
        updated_at = now()
    WHERE payments.id = :payment_id
      AND payments.status IN ({", ".join(f"'{status.value}'" for status in CREDITABLE)})
      AND payments.credited_at IS NULL
      AND payments.amount = :amount
      AND payments.currency = :currency
      AND (CAST(:yookassa_payment_id AS VARCHAR) IS NULL
           OR payments.yookassa_payment_id IS NULL
           OR payments.yookassa_payment_id = CAST(:yookassa_payment_id AS VARCHAR))
    RETURNING payments.user_id
), credited AS (
    UPDATE users
    SET balance = users.balance + :amount, updated_at = now()
    FROM won
    WHERE users.id = won.user_id
    RETURNING users.id, users.balance, users.free_operations_left, users.telegram_id
), entry AS (
    INSERT INTO ledger_entries (user_id, kind, amount, free_delta, balance_after, free_after,
                                payment_id, idempotency_key, created_at)
    SELECT credited.id, '{LedgerKind.TOPUP.value}', :amount, 0, credited.balance,
           credited.free_operations_left, :payment_id, :key, now()
    FROM credited
    RETURNING id
), notice AS (
    INSERT INTO payment_notices ("key", payment_id, user_id, kind, amount, balance_after,
                                 created_at, attempts)
    SELECT :notice_key, :payment_id, credited.id, '{NoticeKind.CREDITED.value}', :amount,
           credited.balance, :credited_at, 0
    FROM credited
    RETURNING id
)
SELECT credited.id AS user_id, credited.balance, credited.telegram_id FROM credited
"""
)


async def _credit_postgresql(
    session: AsyncSession,
    *,
    payment_id: int,
    amount: int,
    currency: str,
    yookassa_payment_id: str | None,
    raw: dict[str, Any] | None,
) -> CreditResult | None:
    row = (
        await session.execute(
            _CREDIT_SQL,
            {
                "payment_id": payment_id,
                "amount": amount,
                "currency": currency,
                "yookassa_payment_id": yookassa_payment_id,
                "raw": json.dumps(raw) if raw is not None else None,
                "credited_at": utcnow(),
                "key": f"topup:{payment_id}",
                "notice_key": notices.credited_key(payment_id),
            },
        )
    ).one_or_none()
    if row is None:
        return None
    return CreditResult(payment_id, row.user_id, row.telegram_id, amount, row.balance)


async def record_payment_refund(
    session: AsyncSession, *, payment_id: int, refund_id: str, amount: int
) -> int | None:
    """Money returned to the card through YooKassa: debit it from the balance, once per refund.

    The balance may go below zero when the money was already spent: the negative balance,
    with this ledger entry, is the record of the debt; paid operations stay closed until a
    top-up covers it. Returns the new balance, or None when this refund was recorded before.
    Records the user's "refunded" message (``billing.notices``) in the same transaction.
    """
    if not isinstance(amount, int) or amount <= 0:
        raise InvalidAmount(amount)
    if amount > INT64_MAX:
        raise AmountOutOfRange(amount, INT64_MAX)
    key = f"payment_refund:{refund_id}"
    if await session.scalar(select(LedgerEntry.id).where(LedgerEntry.idempotency_key == key)):
        return None
    row = (
        await session.execute(
            update(Payment)
            .where(
                Payment.id == payment_id,
                Payment.credited_at.is_not(None),
                Payment.refunded_amount <= Payment.amount - amount,  # no overflow
            )
            .values(
                refunded_amount=Payment.refunded_amount + amount,
                status=case(
                    (
                        Payment.refunded_amount + amount == Payment.amount,
                        PaymentStatus.REFUNDED.value,
                    ),
                    else_=Payment.status,
                ),
            )
            .returning(Payment.user_id)
        )
    ).one_or_none()
    if row is None:
        exists = await session.scalar(select(Payment.id).where(Payment.id == payment_id))
        if exists is None:
            raise PaymentNotFound(payment_id)
        raise InvalidAmount(amount, "refund exceeds what was credited for this payment")
    user = (
        await session.execute(
            update(User)
            .where(User.id == row.user_id)
            .values(balance=User.balance - amount)
            .returning(User.balance, User.free_operations_left)
        )
    ).one()
    await _ledger(
        session,
        user_id=row.user_id,
        kind=LedgerKind.PAYMENT_REFUND,
        amount=-amount,
        free_delta=0,
        balance_after=user.balance,
        free_after=user.free_operations_left,
        key=key,
        payment_id=payment_id,
        reason=f"YooKassa refund {refund_id}",
    )
    await notices.add(
        session,
        key=notices.refunded_key(refund_id),
        kind=NoticeKind.REFUNDED,
        payment_id=payment_id,
        user_id=row.user_id,
        amount=amount,
        balance_after=user.balance,
    )
    return user.balance


# --- admin and summaries ---------------------------------------------------------------


async def adjust(
    session: AsyncSession,
    *,
    user_id: int,
    reason: str,
    amount: int = 0,
    free_delta: int = 0,
    admin_id: int | None = None,
    key: str | None = None,
    max_amount: int | None = None,
) -> UserState:
    """An admin's grant (positive) or debit (negative) of money and/or free operations.

    ``max_amount`` is the operator's limit in kopecks (``settings.admin_adjust_max_kopecks``:
    the bot's commands and the CLI pass it); without it only the columns' range bounds the
    amount. Either way the balance never passes int64 and free operations never pass int32.
    """
    if (
        not isinstance(amount, int)
        or not isinstance(free_delta, int)
        or isinstance(amount, bool)
        or isinstance(free_delta, bool)
    ):
        raise InvalidAmount((amount, free_delta), "adjustments are whole kopecks / operations")
    if amount == 0 and free_delta == 0:
        raise InvalidAmount(0, "an adjustment must change something")
    limit = INT64_MAX if max_amount is None else min(max_amount, INT64_MAX)
    if abs(amount) > limit:
        raise AmountOutOfRange(amount, limit, "an adjustment past the operator's limit")
    if abs(free_delta) > MAX_FREE_ADJUST:
        raise AmountOutOfRange(free_delta, MAX_FREE_ADJUST, "free operations past the limit")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidAmount(amount, "an adjustment needs a reason")
    row = (
        await session.execute(
            update(User)
            .where(
                User.id == user_id,
                # Compared without adding, so the checks themselves cannot overflow.
                User.balance >= -amount if amount < 0 else True,
                User.free_operations_left >= -free_delta if free_delta < 0 else True,
                User.balance <= INT64_MAX - amount if amount > 0 else True,
                User.free_operations_left <= INT32_MAX - free_delta if free_delta > 0 else True,
            )
            .values(
                balance=User.balance + amount,
                free_operations_left=User.free_operations_left + free_delta,
            )
            .returning(*_USER_COLUMNS)
        )
    ).one_or_none()
    if row is None:
        user = await get_user(session, user_id=user_id)
        if amount > 0 and user.balance > INT64_MAX - amount:
            raise AmountOutOfRange(amount, INT64_MAX - user.balance, "the balance would overflow")
        if free_delta > 0 and user.free_left > INT32_MAX - free_delta:
            raise AmountOutOfRange(
                free_delta, INT32_MAX - user.free_left, "free operations would overflow"
            )
        raise InsufficientFunds(
            price=-amount,
            balance=user.balance,
            free_left=user.free_left,
            free_granted=user.free_granted,
        )
    who = f"admin {admin_id}: " if admin_id is not None else ""
    await _ledger(
        session,
        user_id=user_id,
        kind=LedgerKind.ADJUSTMENT,
        amount=amount,
        free_delta=free_delta,
        balance_after=row.balance,
        free_after=row.free_operations_left,
        key=key or f"adjust:{uuid.uuid4().hex}",
        reason=f"{who}{reason}"[:1000],
    )
    return _state(row)


async def get_summary(session: AsyncSession, *, user_id: int, recent: int = 5) -> Summary:
    user = await get_user(session, user_id=user_id)
    rows = (
        await session.execute(
            select(
                Operation.id,
                Operation.type,
                Operation.price,
                Operation.funding,
                Operation.status,
                Operation.created_at,
            )
            .where(Operation.user_id == user_id)
            .order_by(Operation.id.desc())
            .limit(recent)
        )
    ).all()
    return Summary(user=user, recent=[dict(r._mapping) for r in rows])


async def ledger_totals(session: AsyncSession, *, user_id: int) -> tuple[int, int]:
    row = (
        await session.execute(
            select(
                func.coalesce(func.sum(LedgerEntry.amount), 0),
                func.coalesce(func.sum(LedgerEntry.free_delta), 0),
            ).where(LedgerEntry.user_id == user_id)
        )
    ).one()
    return int(row[0]), int(row[1])
