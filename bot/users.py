"""The account behind a Telegram user, and how its money reads on screen."""

from __future__ import annotations

from typing import Any

from aiogram.types import User
from sqlalchemy.ext.asyncio import AsyncSession

from billing import accounts
from billing.accounts import UserState
from billing.prices import format_rub
from billing.settings import Settings


async def ensure_user(
    session: AsyncSession, settings: Settings, user: User, lang: str
) -> UserState:
    """Find or create the user (a newcomer gets the free operations) and commit."""
    state, _ = await accounts.get_or_create_user(
        session,
        telegram_id=user.id,
        free_operations=settings.FREE_OPERATIONS_COUNT,
        username=user.username,
        language=lang,
    )
    await session.commit()
    return state


def money_args(state: UserState, settings: Settings) -> dict[str, Any]:
    """The arguments every balance text takes."""
    return {
        "balance": format_rub(state.balance),
        "price": format_rub(settings.price_kopecks),
        "free_left": state.free_left,
        "free_total": state.free_granted,
    }
