"""A user's updates are handled one at a time and in the order they came: a photo and a
"/start" sent right after it are handled photo first, whichever polls Redis first. Two
replicas on one Redis still keep a user's updates apart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.memory import DisabledEventIsolation
from aiogram.fsm.storage.redis import RedisEventIsolation
from redis.asyncio import Redis

from bot.isolation import OrderedEventIsolation
from tests.bot.conftest import RunningBot, StartBot

KEY = StorageKey(bot_id=1, chat_id=42, user_id=42)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def _handled_in_order(isolation: OrderedEventIsolation, count: int) -> list[int]:
    """``count`` updates of one user arrive while an earlier one is being handled."""
    handled: list[int] = []
    earlier = asyncio.Event()
    release = asyncio.Event()

    async def update(index: int) -> None:
        async with isolation.lock(KEY):
            if index < 0:
                earlier.set()
                await release.wait()
            else:
                handled.append(index)
                await asyncio.sleep(0)  # a handler awaits something

    first = asyncio.create_task(update(-1))
    await earlier.wait()
    rest = []
    for index in range(count):  # arriving a little apart, as a user's messages do
        rest.append(asyncio.create_task(update(index)))
        await asyncio.sleep(0.012)
    # Released when the first waiter's next poll of Redis (every 0.1 s) is not the first due.
    await asyncio.sleep(0.05)
    release.set()
    await asyncio.gather(first, *rest)
    return handled


async def test_updates_waiting_for_a_user_are_handled_first_come_first_served(
    redis: Redis,
) -> None:
    isolation = OrderedEventIsolation(RedisEventIsolation(redis))
    assert await _handled_in_order(isolation, 8) == list(range(8))
    assert isolation.users_in_hand() == 0, "a user whose updates are done is forgotten"
    assert await redis.keys("*") == [], "the Redis lock is released"


async def test_two_replicas_keep_one_users_updates_apart(redis: Redis) -> None:
    replicas = [OrderedEventIsolation(RedisEventIsolation(redis)) for _ in range(2)]
    inside = 0
    most = 0

    async def update(isolation: OrderedEventIsolation) -> None:
        nonlocal inside, most
        async with isolation.lock(KEY):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.02)
            inside -= 1

    await asyncio.gather(*(update(replicas[i % 2]) for i in range(6)))
    assert most == 1


async def test_a_cancelled_waiter_leaves_the_queue_working(redis: Redis) -> None:
    isolation = OrderedEventIsolation(RedisEventIsolation(redis))
    release = asyncio.Event()
    handled: list[str] = []

    async def update(name: str, hold: bool = False) -> None:
        async with isolation.lock(KEY):
            handled.append(name)
            if hold:
                await release.wait()

    first = asyncio.create_task(update("first", hold=True))
    await asyncio.sleep(0.01)
    gone = asyncio.create_task(update("gone"))
    last = asyncio.create_task(update("last"))
    await asyncio.sleep(0.01)
    gone.cancel()
    release.set()
    await asyncio.gather(first, last, gone, return_exceptions=True)
    assert handled == ["first", "last"]
    assert isolation.users_in_hand() == 0


async def _hanging_update(isolation: OrderedEventIsolation) -> asyncio.Task[None]:
    """An update whose handler never ends, once it holds the user's lock."""
    holding = asyncio.Event()

    async def hangs() -> None:
        async with isolation.lock(KEY):
            holding.set()
            await asyncio.Event().wait()

    stuck = asyncio.create_task(hangs())
    await holding.wait()
    return stuck


async def test_an_update_behind_one_that_hangs_waits_no_longer_than_the_redis_lock(
    redis: Redis,
) -> None:
    # The Redis lock expires after 0.3 s here (60 s in the bot): so does the queue's wait.
    isolation = OrderedEventIsolation(RedisEventIsolation(redis, lock_kwargs={"timeout": 0.3}))
    assert isolation.patience == 0.3
    handled: list[str] = []

    async def next_one() -> None:
        async with isolation.lock(KEY):
            handled.append("next")

    stuck = await _hanging_update(isolation)
    await asyncio.wait_for(next_one(), timeout=10)
    assert handled == ["next"] and not stuck.done()
    stuck.cancel()
    await asyncio.gather(stuck, return_exceptions=True)
    assert isolation.users_in_hand() == 0


async def test_updates_that_come_long_after_a_handler_hung_do_not_wait_for_it() -> None:
    """The wait is counted from when the hanging update took its place, not from each
    arrival: once it is over, later updates go on at once."""
    isolation = OrderedEventIsolation(DisabledEventIsolation(), patience=60)

    async def later() -> str:
        async with isolation.lock(KEY):
            return "handled"

    stuck = await _hanging_update(isolation)
    # The hanging update took its place 61 s ago (its Redis lock has expired).
    isolation._queues[KEY].taken_at -= 61  # type: ignore[operator]
    assert await asyncio.wait_for(later(), timeout=10) == "handled"
    assert await asyncio.wait_for(later(), timeout=10) == "handled"
    assert not stuck.done()
    stuck.cancel()
    await asyncio.gather(stuck, return_exceptions=True)
    assert isolation.users_in_hand() == 0


async def _in_mode(app: RunningBot, user: Any, button: str, prompt: str) -> Any:
    """The user opened a mode and the bot has handled everything so far: the menu message."""
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    await user.press(menu, text=button)
    await user.wait_for_text(prompt)
    assert app.feed is not None
    await app.feed.idle()
    return menu


@asynccontextmanager
async def _busy(app: RunningBot, user: Any) -> AsyncIterator[None]:
    """While inside, the bot is still handling an earlier update of the user (holds its lock).

    Send the first update, wait 0.05 s, send the second, wait 0.07 s: the lock is released
    before the first's next poll of Redis (every 0.1 s) and after the second's is due, so
    Redis alone would hand the second the lock first."""
    isolation = app.dispatcher.fsm.events_isolation
    key = StorageKey(bot_id=app.bot.id, chat_id=user.chat_id, user_id=user.user_id)
    async with isolation.lock(key):
        yield


async def test_a_photo_then_start_at_once_takes_the_photo_then_shows_the_menu(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    app = await start_bot()
    user = tg.user(9311)
    menu = await _in_mode(app, user, "✨ Ретушь", "портрет")
    async with _busy(app, user):
        await user.send_photo(photo)
        await asyncio.sleep(0.05)
        await user.send_text("/start")
        await asyncio.sleep(0.07)
    assert app.feed is not None
    await app.feed.idle()
    operations = await app.operations()
    assert len(operations) == 1, "the photo came after /start: it was not taken in the mode"
    assert operations[0].type == "retouch"
    said = [m for m in await user.bot_messages() if m.message_id > menu.message_id]
    [queued] = [m.message_id for m in said if "В очереди" in m.text]
    [menu_again] = [m.message_id for m in said if "Что сделаем?" in m.text]
    assert queued < menu_again, [m.text for m in said]


async def test_done_sent_right_after_an_album_takes_the_whole_album(
    start_bot: StartBot, tg, photo: bytes, photo2: bytes
) -> None:
    app = await start_bot()
    user = tg.user(9312)
    await _in_mode(app, user, "🔗 Объединить", "от 2 до 4 фотографий")
    before = user.mark
    async with _busy(app, user):
        album = await user.send_album([photo, photo2, photo])
        await asyncio.sleep(0.05)
        await user.send_text("✅ Готово")  # before any answer to the album
        await asyncio.sleep(0.07)
    await user.wait_for_text("В очереди", since=before)
    assert app.feed is not None
    await app.feed.idle()
    [operation] = await app.operations()
    assert operation.input_ref["file_ids"] == [m.file_id for m in album]
    assert not [m for m in await user.bot_messages() if "не добавлено" in m.text]
