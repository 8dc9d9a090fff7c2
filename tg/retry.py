"""The one retry rule for Telegram calls: :class:`RetryPolicy` and :func:`retry_call`.

The bot (every Bot API call, through the :class:`RetryRequests` session middleware), the
worker (``workers/delivery.py``: inputs, the result, the refund notice), the web notifier
(``web/notify.py``) and the webhook setup (``web/app.py``) all retry through
:func:`retry_call`, each with its own :class:`RetryPolicy`; what is worth another try is
decided by :func:`tg.errors.classify`.

- A 5xx or a gateway's HTML page (Telegram did not perform the call) is tried ``attempts``
  times in all, with ``backoff`` between tries. A network error or a timeout is too, unless
  the policy says ``retry_network=False`` (the call may have gone through: the bot would
  send a message twice).
- A 429 does not use up the attempts: Telegram says when to come back. Its waits are bounded
  by ``flood_budget`` seconds per call instead, each with up to ``flood_jitter`` seconds
  added at random, so two calls to one chat refused together do not come back together and
  collide again (two "⏳ В очереди" messages refused in lockstep three times used up the
  attempts and reversed a paid operation). A ``retry_after`` over ``max_retry_after`` is
  raised at once: the caller has a better place to wait (RQ's retry, the maintenance pass).
- ``until`` (the event loop's clock): no wait is begun that, with ``room`` seconds for the
  next try itself, would end past it; the error is raised instead. The worker's delivery
  passes its job's deadline: a watchdog firing during a retried upload refunded a delivered
  photo.
- Anything else (400, 403, a bug) is raised at once, unless ``retry_permanent`` (the webhook
  setup: the fix may be outside this process).

``getUpdates`` is left alone by the middleware: aiogram's polling loop backs off on its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import GetUpdates, TelegramMethod
from aiogram.methods.base import Response

from tg.errors import Kind, classify

log = logging.getLogger(__name__)

T = TypeVar("T")


async def _sleep(seconds: float) -> None:
    """The wait between tries: a seam where tests record the waits asked and shorten them."""
    await asyncio.sleep(seconds)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int | None = 3  # tries of a call failing 5xx / network; None: until it succeeds
    backoff: tuple[float, ...] = (0.5, 1.5, 4.0)  # after the n-th failure; the last repeats
    max_retry_after: float = 15.0  # a longer flood wait is raised at once
    flood_budget: float = 30.0  # seconds of flood waits one call may spend
    flood_jitter: float = 0.5  # seconds added at random to each flood wait
    retry_network: bool = True  # False when a call that may have gone through must not repeat
    retry_permanent: bool = False  # True: refusals and unknown errors are retried too

    def flood_delay(self, retry_after: float, waited: float) -> float | None:
        """The wait before the next try after a 429 (``retry_after`` plus jitter), or None
        when it is not worth it: more than ``max_retry_after`` asked, or the call's flood
        waits would pass ``flood_budget`` in all."""
        delay = float(retry_after) + random.uniform(0.0, self.flood_jitter)
        if retry_after > self.max_retry_after or waited + delay > self.flood_budget:
            return None
        return delay

    def backoff_delay(self, failures: int) -> float | None:
        """The wait after the ``failures``-th failure, or None when the attempts are used up."""
        if self.attempts is not None and failures >= self.attempts:
            return None
        return self.backoff[min(failures, len(self.backoff)) - 1]

    def retries(self, kind: Kind | None) -> bool:
        if kind is Kind.NETWORK:
            return self.retry_network
        if kind is not None and kind.transient:
            return True
        return self.retry_permanent


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


async def retry_call(
    make: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    what: str,
    logger: logging.Logger = log,
    until: float | None = None,
    room: float = 0.0,
) -> T:
    """``await make()``, tried again as ``policy`` says; the last error is raised.

    Each retry is logged on ``logger`` (the caller's, so the line names who retried):
    "<what> failed (attempt n): …"; a success after a retry as "<what> done (attempt n)"."""
    loop = asyncio.get_running_loop()
    attempt = 0
    failures = 0
    flood_waited = 0.0
    while True:
        attempt += 1
        try:
            result = await make()
        except Exception as exc:
            kind = classify(exc)
            if not policy.retries(kind):
                raise
            if isinstance(exc, TelegramRetryAfter):
                flood = policy.flood_delay(exc.retry_after, flood_waited)
                if flood is None:
                    raise
                delay = flood
                note = f"flood control, waiting {exc.retry_after} s"
            else:
                failures += 1
                backoff = policy.backoff_delay(failures)
                if backoff is None:
                    raise
                delay = backoff
                note = f"{_describe(exc)}; trying again in {delay:.1f} s"
            if until is not None and loop.time() + delay + room > until:
                raise
            if isinstance(exc, TelegramRetryAfter):
                flood_waited += delay
            logger.log(
                logging.WARNING if kind is not None and kind.transient else logging.ERROR,
                "%s failed (attempt %d): %s",
                what,
                attempt,
                note,
            )
            await _sleep(delay)
        else:
            if attempt > 1:
                logger.info("%s done (attempt %d)", what, attempt)
            return result


# The bot's calls: a handler's reply, a prompt, "⏳ В очереди". Not network errors: the
# message may have been sent. Short waits: a user is looking at the chat.
BOT_CALLS = RetryPolicy(
    attempts=4,
    backoff=(0.5, 1.0, 2.0),
    max_retry_after=15.0,
    flood_budget=20.0,
    flood_jitter=0.5,
    retry_network=False,
)


class RetryRequests(BaseRequestMiddleware):
    """Every Bot API call of the bot's session, retried by ``policy`` (default
    :data:`BOT_CALLS`; keyword arguments change single fields of it)."""

    def __init__(self, policy: RetryPolicy = BOT_CALLS, **changes: Any) -> None:
        self.policy = dataclasses.replace(policy, **changes) if changes else policy

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[Any],
        bot: Bot,
        method: TelegramMethod[Any],
    ) -> Response[Any]:
        if isinstance(method, GetUpdates):
            return await make_request(bot, method)
        return await retry_call(
            lambda: make_request(bot, method), self.policy, what=type(method).__name__
        )
