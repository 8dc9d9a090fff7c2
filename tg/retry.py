"""Retrying the bot's Bot API calls that Telegram refused for the moment.

aiogram raises on a 429 (flood control) or a 5xx and retries nothing, so a menu, a prompt or
the "⏳ В очереди" message was simply lost (and a paid operation reversed) whenever Telegram
hiccuped — found by the chaos scenario ``tests/chaos/test_telegram_faults.py``.
:class:`RetryRequests`, a request middleware on the bot's session, waits out a short
``retry_after`` and retries 5xx answers and gateway error pages (HTML instead of JSON) a few
times with back-off. Those answers mean Telegram did not perform the call, so a retry sends
nothing twice. Network errors are not retried: the call may have gone through.

A 429 does not use up the attempts: Telegram says when to come back. Its waits are bounded
by ``flood_budget`` seconds per call instead, each with up to ``flood_jitter`` seconds added
at random, so two calls to the same chat refused together do not come back together and
collide again (as the worker's ``delivery.call`` does; the chaos scenario saw three such
rounds exhaust the attempts, and a paid operation reversed, on a busy machine).

``getUpdates`` is left alone: aiogram's polling loop backs off on its own. The worker and
the web server retry at their own level (``workers/delivery.py``, ``web/notify.py``).
"""

from __future__ import annotations

import asyncio
import logging
import random
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


def flood_delay(
    retry_after: float, waited: float, *, max_retry_after: float, budget: float, jitter: float
) -> float | None:
    """How long to wait before trying again after a 429 (``retry_after`` plus up to
    ``jitter`` at random), or None when that is not worth it: Telegram asks for more than
    ``max_retry_after``, or the call's flood waits would pass ``budget`` seconds in all.
    Shared by the bot's calls and the worker's (``workers.delivery.call``)."""
    delay = float(retry_after) + random.uniform(0.0, jitter)
    if retry_after > max_retry_after or waited + delay > budget:
        return None
    return delay


class RetryRequests(BaseRequestMiddleware):
    def __init__(
        self,
        attempts: int = 4,
        max_retry_after: float = 15.0,
        backoff: tuple[float, ...] = (0.5, 1.0, 2.0),
        flood_budget: float = 20.0,
        flood_jitter: float = 0.5,
    ) -> None:
        self.attempts = attempts  # tries of a call answered 5xx
        self.max_retry_after = max_retry_after
        self.backoff = backoff
        self.flood_budget = flood_budget
        self.flood_jitter = flood_jitter

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[Any],
        bot: Bot,
        method: TelegramMethod[Any],
    ) -> Response[Any]:
        if isinstance(method, GetUpdates):
            return await make_request(bot, method)
        name = type(method).__name__
        failures = 0
        waited = 0.0
        while True:
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                flood = flood_delay(
                    exc.retry_after,
                    waited,
                    max_retry_after=self.max_retry_after,
                    budget=self.flood_budget,
                    jitter=self.flood_jitter,
                )
                if flood is None:
                    raise
                delay = flood
                waited += delay
                log.warning("%s: flood control, retrying in %.0f s", name, exc.retry_after)
            except (TelegramServerError, ClientDecodeError) as exc:
                failures += 1
                if failures >= self.attempts:
                    raise
                delay = self.backoff[min(failures - 1, len(self.backoff) - 1)]
                log.warning("%s: %s, retrying in %.1f s", name, type(exc).__name__, delay)
            await asyncio.sleep(delay)
