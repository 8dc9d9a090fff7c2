"""Outer middlewares on every update: language, throttling, one database session."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message, PreCheckoutQuery, TelegramObject, Update, User
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing.bounds import fits_int64
from billing.settings import Settings
from texts.i18n import pick_language, t

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


def _ids_out_of_range(update: Update, data: dict[str, Any]) -> list[str]:
    """The ids of an update that a 64-bit column could not hold (none, from Telegram)."""
    found = []
    user: User | None = data.get("event_from_user")
    chat = data.get("event_chat")
    inner = update.event
    message = inner.message if isinstance(inner, CallbackQuery) else inner
    for name, value in (
        ("update_id", update.update_id),
        ("user id", user.id if user is not None else 0),
        ("chat id", chat.id if chat is not None else 0),
        ("message_id", message.message_id if isinstance(message, Message) else 0),
    ):
        if not fits_int64(value):
            found.append(name)
    return found


class IdBoundsMiddleware(BaseMiddleware):
    """Drops an update whose ids do not fit 64 bits before any handler or query sees it.

    Telegram's ids fit (user ids have at most 52 significant bits): such an update is forged
    or from a broken Bot API server, so there is no one to answer; it is logged, one line.
    """

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if isinstance(event, Update):
            bad = _ids_out_of_range(event, data)
            if bad:
                log.warning(
                    "update %.40s dropped: %s out of the 64-bit range",
                    str(event.update_id),
                    ", ".join(bad),
                )
                return None
        return await handler(event, data)


class I18nMiddleware(BaseMiddleware):
    """`lang` for the handlers: English for English Telegram users, Russian otherwise."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        data["lang"] = pick_language(user.language_code if user else None)
        return await handler(event, data)


class DbSessionMiddleware(BaseMiddleware):
    """One AsyncSession per update, handed to handlers as `session`.

    Handlers and the billed middleware commit what they mean to keep; whatever is left
    uncommitted when the update is done is rolled back when the session closes.
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        async with self.sessionmaker() as session:
            data["session"] = session
            return await handler(event, data)


# A token bucket per user in Redis, refilled from Redis' own clock so every replica agrees.
# Returns 1 (allowed), 0 (refused: warn the user) or -1 (refused again: stay silent).
# KEYS[2], when given, is an album's key: the album's first message takes a token and lets
# the album in; its other messages pass with no token (one album is one request, however
# many photos Telegram splits it into).
_TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
if KEYS[2] then
  local seen = redis.call('GET', KEYS[2])
  if seen then
    return tonumber(seen)
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'warned')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
local warned = tonumber(state[3]) or 0
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local result
if tokens >= 1 then
  tokens = tokens - 1
  warned = 0
  result = 1
elseif warned == 0 then
  warned = 1
  result = 0
else
  result = -1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now), 'warned', warned)
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
if KEYS[2] then
  redis.call('SET', KEYS[2], result == 1 and 1 or -1, 'EX', 600)
end
return result
"""


class ThrottlingMiddleware(BaseMiddleware):
    """Slows down a user who floods the bot: THROTTLE_BURST updates at once, then
    THROTTLE_RATE_PER_SECOND. The first refused update gets a polite answer, the rest of the
    flood is dropped silently (callback queries are still answered, without text, so the
    button stops spinning). The bucket lives in Redis, so it holds across replicas; if
    Redis does not answer, the update is let through (availability over strictness)."""

    def __init__(self, redis: Redis, settings: Settings, prefix: str = "throttle") -> None:
        self.redis = redis
        self.rate = settings.THROTTLE_RATE_PER_SECOND
        self.burst = settings.THROTTLE_BURST
        self.prefix = prefix
        self.script = redis.register_script(_TOKEN_BUCKET)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is None or self.rate <= 0:
            return await handler(event, data)
        inner = event.event if isinstance(event, Update) else event
        if isinstance(inner, PreCheckoutQuery) or (
            isinstance(inner, Message) and (inner.successful_payment or inner.refunded_payment)
        ):
            # Money Telegram took or gave back, or a pre-checkout it waits 10 s for: never
            # dropped, however fast the user went.
            return await handler(event, data)
        keys = [f"{self.prefix}:{user.id}"]
        if isinstance(inner, Message) and inner.media_group_id:
            keys.append(f"{self.prefix}:album:{user.id}:{inner.media_group_id}")
        try:
            verdict = int(await self.script(keys=keys, args=[self.rate, self.burst]))
        except (RedisError, OSError) as exc:
            log.warning("throttling skipped, Redis error: %s", exc)
            verdict = 1
        if verdict == 1:
            return await handler(event, data)
        log.info("throttled user %s (%s)", user.id, "warned" if verdict == 0 else "silent")
        await self._refuse(event, data, warn=verdict == 0)
        return None

    @staticmethod
    async def _refuse(event: TelegramObject, data: dict[str, Any], *, warn: bool) -> None:
        lang = data.get("lang") or pick_language(None)
        update = event if isinstance(event, Update) else None
        inner = update.event if update is not None else event
        text = t("bot-throttled", lang)
        try:
            if isinstance(inner, CallbackQuery):
                await inner.answer(text if warn else None)
            elif isinstance(inner, Message) and warn:
                await inner.answer(text)
        except Exception as exc:  # noqa: BLE001 - a refusal must not fail the update
            log.warning("could not send the throttling notice: %s", exc)
