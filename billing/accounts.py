"""Users: find or create (with the signup's free operations), e-mail, an operator's
adjustment, the summary screen."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing import ledger
from billing.bounds import INT32_MAX, INT64_MAX, MAX_FREE_ADJUST
from billing.errors import AmountOutOfRange, InsufficientFunds, InvalidAmount, UserNotFound
from billing.models import LedgerEntry, LedgerKind, Operation, User


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
class Summary:
    user: UserState
    recent: list[dict[str, Any]] = field(default_factory=list)


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
        # The user's row and the signup entry of their free operations: one chain.
        signup = [
            ledger.Step(
                "user",
                lambda _: ledger.insert_or_skip(
                    ledger.dialect_of(session), User.__table__.c.telegram_id
                )
                .values(
                    telegram_id=telegram_id,
                    username=username,
                    language=language,
                    balance=0,
                    free_operations_left=free_operations,
                    free_operations_granted=free_operations,
                )
                .returning(*_USER_COLUMNS),
            )
        ]
        if free_operations:
            signup.append(
                ledger.Step(
                    "entry",
                    lambda p: ledger.entry(
                        p["user"],
                        kind=LedgerKind.SIGNUP,
                        amount=0,
                        free_delta=free_operations,
                        key=ledger.key_of("signup:", p["user"].id),
                    ),
                )
            )
        inserted = (await ledger.run(session, signup))["user"]
        if inserted is not None:
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
    who = f"admin {admin_id}: " if admin_id is not None else ""
    row = await ledger.move(
        session,
        user_id=user_id,
        kind=LedgerKind.ADJUSTMENT,
        key=key or f"adjust:{uuid.uuid4().hex}",
        amount=amount,
        free_delta=free_delta,
        # Compared without adding, so the checks themselves cannot overflow.
        conditions=(
            User.balance >= -amount if amount < 0 else true(),
            User.free_operations_left >= -free_delta if free_delta < 0 else true(),
            User.balance <= INT64_MAX - amount if amount > 0 else true(),
            User.free_operations_left <= INT32_MAX - free_delta if free_delta > 0 else true(),
        ),
        reason=f"{who}{reason}"[:1000],
    )
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


async def set_confirm_charges(session: AsyncSession, *, user_id: int, on: bool | None) -> None:
    """The user's "confirm before a charge" (/settings); None: the operator's default."""
    await session.execute(update(User).where(User.id == user_id).values(confirm_charges=on))
