"""Keep aiogram's parametrized ``Response[T]`` models alive for the life of the process.

aiogram's ``check_response`` parametrizes ``Response[<the method's return type>]`` on every
call. pydantic caches a parametrized generic only weakly: once a full garbage collection
frees it, the next call builds its schema again, milliseconds of CPU on the event loop.
Kept because ``bench/internals.py`` measures the gain (same run, frozen startup heap):
+76 % ``check_response`` calls/s with a full collection per 1000 calls, x18 with one per
100; nothing without collections. Figures in ``bench/RESULTS.md``.
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response

_PINNED: dict[type, type] = {}


def pin(method_type: type[TelegramMethod[Any]]) -> type:
    """``Response[T]`` of a method type: built once, then kept."""
    model = _PINNED.get(method_type)
    if model is None:
        model = _PINNED[method_type] = Response[method_type.__returning__]  # type: ignore[name-defined]
    return model


class PinResponseModels(BaseRequestMiddleware):
    """A request middleware: pins the response model of every method the bot calls."""

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[Any],
        bot: Bot,
        method: TelegramMethod[Any],
    ) -> Response[Any]:
        pin(type(method))
        return await make_request(bot, method)
