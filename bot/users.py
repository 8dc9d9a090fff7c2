"""The account behind a Telegram user, and how its money reads on screen."""

from __future__ import annotations

from typing import Any

from aiogram.types import InlineKeyboardMarkup, User
from sqlalchemy.ext.asyncio import AsyncSession

from billing import accounts, ai_models, wallet
from billing.accounts import UserState
from billing.prices import format_rub, operation_types
from billing.settings import Settings
from bot.keyboards import main_menu, modes
from texts import model_texts


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


def money_args(state: UserState | wallet.Wallet, settings: Settings) -> dict[str, Any]:
    """The arguments every balance text takes."""
    return {
        "balance": format_rub(state.balance),
        "price": format_rub(settings.price_kopecks),
        "free_left": state.free_left,
        "free_total": state.free_granted,
    }


async def locked_modes(session: AsyncSession, telegram_id: int) -> frozenset[str]:
    """The modes the user's plans do not unlock (🔒 on their buttons)."""
    allowed = await wallet.allowed_types(session, telegram_id=telegram_id)
    if allowed is None:
        return frozenset()
    return frozenset(kind.value for kind in operation_types() if kind.value not in allowed)


async def menu_for(
    session: AsyncSession, settings: Settings, user: User, lang: str
) -> InlineKeyboardMarkup:
    """The main menu as this user sees it: the modes the model catalogue offers now, 🔒 on
    those their plans do not unlock."""
    models = await ai_models.catalogue(session)
    return main_menu(lang, settings, await locked_modes(session, user.id), models)


async def menu_text(session: AsyncSession, settings: Settings, text: str, lang: str) -> str:
    """A main menu's text with the note on modes without their model or not offered now
    (never silently: the user sees why a mode is missing or simpler)."""
    models = await ai_models.catalogue(session)
    note = model_texts.menu_note(models, settings, modes(), lang)
    return f"{text}\n\n{note}" if note else text
