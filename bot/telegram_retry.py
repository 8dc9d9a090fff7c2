"""Retrying the bot's Bot API calls that Telegram refused for the moment.

aiogram raises on a 429 (flood control) or a 5xx and retries nothing, so a menu, a prompt or
the "⏳ В очереди" message was simply lost (and a paid operation reversed) whenever Telegram
hiccuped — found by the chaos scenario ``tests/chaos/test_telegram_faults.py``.
:class:`RetryRequests`, a request middleware on the bot's session, waits out a short
``retry_after`` and retries 5xx answers and gateway error pages (HTML instead of JSON) a few
times with back-off. Those answers mean Telegram did not perform the call, so a retry sends
nothing twice. Network errors are not retried: the call may have gone through.

``getUpdates`` is left alone: aiogram's polling loop backs off on its own. The worker and
the web server retry at their own level (``workers/delivery.py``, ``web/notify.py``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import ClientDecodeError, TelegramRetryAfter, TelegramServerError
from aiogram.methods import GetUpdates, TelegramMethod
from aiogram.methods.base import Response

log = logging.getLogger(__name__)


class RetryRequests(BaseRequestMiddleware):
    def __init__(
        self,
        attempts: int = 4,
        max_retry_after: float = 15.0,
        backoff: tuple[float, ...] = (0.5, 1.0, 2.0),
    ) -> None:
        self.attempts = attempts
        self.max_retry_after = max_retry_after
        self.backoff = backoff

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[Any],
        bot: Bot,
        method: TelegramMethod[Any],
    ) -> Response[Any]:
        if isinstance(method, GetUpdates):
            return await make_request(bot, method)
        name = type(method).__name__
        for attempt in range(1, self.attempts + 1):
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                if attempt == self.attempts or exc.retry_after > self.max_retry_after:
                    raise
                delay = float(exc.retry_after)
                log.warning("%s: flood control, retrying in %.0f s", name, delay)
            except (TelegramServerError, ClientDecodeError) as exc:
                if attempt == self.attempts:
                    raise
                delay = self.backoff[min(attempt - 1, len(self.backoff) - 1)]
                log.warning("%s: %s, retrying in %.1f s", name, type(exc).__name__, delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover
