"""Building the aiogram Bot from Settings (used by the bot, the worker and the web server)."""

from __future__ import annotations

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.base import BaseSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode

from billing.settings import Settings
from tg.session import TokenSafeSession

# A token of the right shape for the local Bot API emulator when no real token is set.
SANDBOX_TOKEN = "123456:sandbox-token-for-the-local-emulator"


def bot_token(settings: Settings) -> str:
    return settings.BOT_TOKEN.get_secret_value() if settings.BOT_TOKEN else SANDBOX_TOKEN


def make_bot(
    settings: Settings, *, timeout: float = 30.0, session: BaseSession | None = None
) -> Bot:
    """A Bot talking to settings.TELEGRAM_API_URL (the public API, a local one, an emulator),
    through a session whose errors never hold the token (tg.session). ``session``: another
    transport (the tests' in-process emulator session)."""
    if session is None:
        session = TokenSafeSession(
            api=TelegramAPIServer.from_base(settings.TELEGRAM_API_URL), timeout=timeout
        )
    return Bot(
        token=bot_token(settings),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML),
    )
