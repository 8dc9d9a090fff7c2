"""The last router: whatever no feature took."""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, ErrorEvent, Message, ReplyParameters
from sqlalchemy.ext.asyncio import AsyncSession

from billing.settings import Settings
from bot.users import menu_for
from texts.i18n import t

log = logging.getLogger(__name__)


async def outdated_button(query: CallbackQuery, lang: str) -> None:
    """A payload no handler accepts (an old keyboard, or forged data): refuse, change nothing."""
    log.info("unhandled callback data %r from %s", query.data, query.from_user.id)
    await query.answer(t("bot-button-outdated", lang), show_alert=True)


async def no_mode(message: Message, session: AsyncSession, settings: Settings, lang: str) -> None:
    """A message outside any mode: show what the bot can do."""
    menu = (
        await menu_for(session, settings, message.from_user, lang) if message.from_user else None
    )
    await message.answer(t("bot-pick-mode", lang), reply_markup=menu)


async def on_error(event: ErrorEvent, lang: str | None = None) -> bool:
    """An unexpected error in any handler: log it, and tell the user something failed
    instead of leaving them waiting (charges are already reversed by billed(...))."""
    log.error("error handling update %s", event.update.update_id, exc_info=event.exception)
    text = t("bot-error", lang)
    query = event.update.callback_query
    try:
        if query is not None:
            try:
                await query.answer(text, show_alert=True)
                return True
            except TelegramBadRequest:
                # Most handlers answer the button first (the spinner stops): an error after
                # that cannot be an alert any more. Say it in the chat instead of nothing.
                if not isinstance(query.message, Message):
                    raise
                await query.message.answer(text)
        elif event.update.message is not None:
            message = event.update.message
            # A reply: which of the user's messages failed (one of an album, say).
            await message.answer(
                text,
                reply_parameters=ReplyParameters(
                    message_id=message.message_id, allow_sending_without_reply=True
                ),
            )
    except Exception as exc:  # noqa: BLE001 - Telegram itself may be what failed
        log.warning("could not tell the user about the error: %s", exc)
    return True


def create_router() -> Router:
    """A fresh router (a dispatcher per test or process: a router has one parent)."""
    router = Router(name="fallback")
    router.callback_query.register(outdated_button)
    router.message.register(no_mode)
    router.errors.register(on_error)
    return router
