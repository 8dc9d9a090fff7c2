"""Telling users about their money from the web server: credited, canceled, refunded.

The message is sent after the database commit, in the background, so a slow or failing
Telegram never delays the answer to YooKassa (a late answer would make it deliver the
notification again, and the money is already in). Each kind of message is sent only by the
request that made the change (the once-only credit / cancel / refund), so 20 concurrent
deliveries of one notification produce one message.
"""

from __future__ import annotations

import asyncio
import logging

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)

from billing.prices import format_rub
from bot.i18n import t

log = logging.getLogger(__name__)

ATTEMPTS = 4
MAX_RETRY_AFTER = 30.0

# YooKassa's documented cancellation_details.reason codes, each with its own plain-words text.
CANCELLATION_REASONS = frozenset(
    {
        "3d_secure_failed",
        "call_issuer",
        "canceled_by_merchant",
        "card_expired",
        "country_forbidden",
        "deal_expired",
        "expired_on_capture",
        "expired_on_confirmation",
        "fraud_suspected",
        "general_decline",
        "identification_required",
        "insufficient_funds",
        "internal_timeout",
        "invalid_card_number",
        "invalid_csc",
        "issuer_unavailable",
        "payment_method_limit_exceeded",
        "payment_method_restricted",
        "permission_revoked",
        "unsupported_mobile_operator",
    }
)


def cancellation_text(reason: str | None, language: str | None) -> str:
    """Why a payment was canceled, in the user's words; an unknown code gets a generic text."""
    key = reason if reason in CANCELLATION_REASONS else "unknown"
    return t(f"web-cancel-reason-{key}", language)


def credited_text(*, amount: int, balance: int, language: str | None) -> str:
    return t(
        "web-topup-credited", language, amount=format_rub(amount), balance=format_rub(balance)
    )


def canceled_text(*, amount: int, reason: str | None, language: str | None) -> str:
    return t(
        "web-payment-canceled",
        language,
        amount=format_rub(amount),
        reason=cancellation_text(reason, language),
    )


def refunded_text(*, amount: int, balance: int, language: str | None) -> str:
    key = "web-payment-refunded-debt" if balance < 0 else "web-payment-refunded"
    return t(key, language, amount=format_rub(amount), balance=format_rub(balance))


# Strong references to the parametrized pydantic generics built by the warm-up below.
_KEEP_ALIVE: list[type] = []


def warm_up_telegram_models() -> None:
    """Build the pydantic schemas a sendMessage round trip needs, at startup, and keep them.

    aiogram builds some of them lazily (the ``Response[Message]`` generic is parametrized on
    the first call), which would block the event loop for the first paying user instead.
    pydantic caches a parametrized generic only in a ``WeakValueDictionary``: with nothing
    else holding it, the garbage collector frees the class and the next ``check_response``
    builds its schema again (~1-2 ms of CPU on the event loop, every few hundred messages).
    The module-level list keeps it for the life of the process.
    """
    from aiogram.methods import SendMessage
    from aiogram.methods.base import Response

    SendMessage(chat_id=1, text="-").model_dump()
    response_type = Response[SendMessage.__returning__]  # what check_response parametrizes
    response_type.model_validate(
        {"ok": True, "result": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}}}
    )
    if response_type not in _KEEP_ALIVE:
        _KEEP_ALIVE.append(response_type)


class UserNotifier:
    """Sends messages in background tasks; ``drain`` waits for them at shutdown."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self._tasks: set[asyncio.Task[bool]] = set()

    def send(self, chat_id: int, text: str, *, what: str) -> asyncio.Task[bool]:
        task = asyncio.create_task(self._send(chat_id, text, what=what))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _send(self, chat_id: int, text: str, *, what: str) -> bool:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                await self.bot.send_message(chat_id=chat_id, text=text)
                return True
            except TelegramForbiddenError:
                log.info("%s message not delivered: chat %s blocked the bot", what, chat_id)
                return False
            except TelegramRetryAfter as exc:
                delay = min(float(exc.retry_after), MAX_RETRY_AFTER)
            except (TelegramNetworkError, TelegramServerError) as exc:
                delay = 0.5 * 2 ** (attempt - 1)
                log.warning("%s message to chat %s, attempt %d: %s", what, chat_id, attempt, exc)
            except TelegramAPIError as exc:
                log.error("%s message to chat %s refused: %s", what, chat_id, exc)
                return False
            if attempt < ATTEMPTS:
                await asyncio.sleep(delay)
        log.error("%s message to chat %s not delivered after %d attempts", what, chat_id, ATTEMPTS)
        return False

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Let messages in flight finish (at shutdown); cancel what is still stuck."""
        tasks = list(self._tasks)
        if not tasks:
            return
        _, stuck = await asyncio.wait(tasks, timeout=timeout)
        for task in stuck:
            task.cancel()
        if stuck:
            log.warning("%d user messages not sent before shutdown", len(stuck))
