"""The bot's Bot API calls survive Telegram's flood control and 5xx answers (found by the
Telegram-faults scenario: aiogram retries nothing, so the bot's messages were lost)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramRetryAfter, TelegramServerError

from sandbox._common import ServerHandle
from sandbox.telegram import create_app
from sandbox.telegram_client import TelegramEmulatorClient
from tests.conftest import make_settings
from tg.factory import make_bot
from tg.retry import RetryRequests

TOKEN = "515151:retry-tests-token"


@pytest.fixture
async def emulator() -> AsyncIterator[tuple[TelegramEmulatorClient, Bot]]:
    async with ServerHandle(create_app()) as server:
        settings = make_settings(
            "sqlite:///unused.db", TELEGRAM_API_URL=server.url, BOT_TOKEN=TOKEN
        )
        bot = make_bot(settings)
        bot.session.middleware(RetryRequests(backoff=(0.05, 0.1, 0.2)))
        async with TelegramEmulatorClient(server.url, token=TOKEN) as tg:
            await tg.user(5101).send_text("/start")  # the chat exists
            try:
                yield tg, bot
            finally:
                await bot.session.close()


async def sent(tg: TelegramEmulatorClient) -> list[dict]:
    """The calls that reached the Bot API (injected faults answer before the call log)."""
    return await tg.calls("sendMessage", chat_id=5101)


async def faults_left(tg: TelegramEmulatorClient) -> int:
    faults = (await tg.request("GET", "/_emu/faults"))["faults"]
    return sum(int(f.get("remaining", 0)) for f in faults)


@pytest.mark.parametrize("kind", ["429", "500", "502"])
async def test_a_refused_message_is_sent_again_once(emulator, kind: str) -> None:
    tg, bot = emulator
    await tg.fail_next(2, kind=kind, retry_after=1, methods=["sendMessage"])
    message = await bot.send_message(5101, "hello")
    assert await faults_left(tg) == 0  # both refusals were met, then it went through
    assert [c["ok"] for c in await sent(tg)] == [True]
    delivered = [m for m in await tg.user(5101).bot_messages() if m.text == "hello"]
    assert [m.message_id for m in delivered] == [message.message_id]


async def test_it_gives_up_after_its_attempts(emulator) -> None:
    tg, bot = emulator
    await tg.fail_next(10, kind="500", methods=["sendMessage"])
    with pytest.raises(TelegramServerError):
        await bot.send_message(5101, "never")
    assert await faults_left(tg) == 6 and await sent(tg) == []


async def test_flood_refusals_do_not_use_up_the_attempts(emulator, monkeypatch) -> None:
    """Five 429s in a row (two calls to one chat colliding again and again) and then a 500:
    still sent. Before, the fourth refusal of any kind was the end, and a paid operation's
    "В очереди" message was lost and the charge reversed."""
    from tg import retry as telegram_retry

    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(telegram_retry.asyncio, "sleep", sleep)
    tg, bot = emulator
    await tg.fail_next(5, kind="429", retry_after=1, methods=["sendMessage"])
    await tg.fail_next(1, kind="500", methods=["sendMessage"])
    await bot.send_message(5101, "queued")
    assert await faults_left(tg) == 0
    assert [c["ok"] for c in await sent(tg)] == [True]
    flood = [w for w in waits if w >= 1]
    assert len(flood) == 5 and all(1 <= w <= 1.5 for w in flood)  # jittered
    assert len(set(flood)) > 1


async def test_a_long_flood_wait_is_not_slept_in_a_handler(emulator) -> None:
    tg, bot = emulator
    await tg.fail_next(1, kind="429", retry_after=60, methods=["sendMessage"])
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(5101, "later")
    assert await faults_left(tg) == 0 and await sent(tg) == []


async def test_python_m_bot_registers_it() -> None:
    import inspect

    import bot.__main__ as entry

    assert "RetryRequests" in inspect.getsource(entry)
