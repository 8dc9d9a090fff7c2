"""The web notifier retries its payment messages by the one Telegram retry rule
(``tg.retry``): Telegram's flood control does not use up its attempts, and no wait is begun
that would end past its deadline (the message is left to the maintenance pass at once)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot

from sandbox._common import ServerHandle
from sandbox.telegram import create_app
from sandbox.telegram_client import TelegramEmulatorClient
from tests.conftest import close_bot, make_settings
from tg import retry
from tg.factory import make_bot
from web.notify import UserNotifier

TOKEN = "535353:notifier-retry-token"
CHAT = 5301


@pytest.fixture
async def emulator() -> AsyncIterator[tuple[TelegramEmulatorClient, Bot]]:
    async with ServerHandle(create_app()) as server:
        settings = make_settings(
            "sqlite:///unused.db", TELEGRAM_API_URL=server.url, BOT_TOKEN=TOKEN
        )
        bot = make_bot(settings)
        async with TelegramEmulatorClient(server.url, token=TOKEN) as tg:
            await tg.user(CHAT).send_text("/start")  # the chat exists
            try:
                yield tg, bot
            finally:
                await close_bot(bot)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(retry.asyncio, "sleep", sleep)
    return slept


async def delivered(tg: TelegramEmulatorClient, text: str) -> int:
    return [m.text for m in await tg.user(CHAT).bot_messages()].count(text)


async def test_flood_control_does_not_use_up_the_notifiers_attempts(
    emulator, waits: list[float]
) -> None:
    """Five 429s in a row (more than its four attempts) and the message still goes out."""
    tg, bot = emulator
    await tg.fail_next(5, kind="429", retry_after=1, methods=["sendMessage"])
    notifier = UserNotifier(bot, deadline=150.0)
    assert await notifier.send(CHAT, "Баланс пополнен", what="top-up") is True
    assert await delivered(tg, "Баланс пополнен") == 1
    assert len(waits) == 5 and all(1.0 <= w <= 1.5 for w in waits)


async def test_no_flood_wait_is_begun_past_the_notifiers_deadline(
    emulator, waits: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    """Telegram asks for 20 s, the notifier has 10: it leaves the message to the maintenance
    pass at once instead of sleeping into its deadline."""
    caplog.set_level(logging.INFO)
    tg, bot = emulator
    await tg.fail_next(1, kind="429", retry_after=20, methods=["sendMessage"])
    notifier = UserNotifier(bot, deadline=10.0)
    started = asyncio.get_running_loop().time()
    assert await notifier.send(CHAT, "Баланс пополнен", what="top-up") is False
    assert asyncio.get_running_loop().time() - started < 10.0
    assert waits == []
    assert await delivered(tg, "Баланс пополнен") == 0
    assert any("left to the maintenance pass" in r.getMessage() for r in caplog.records)
