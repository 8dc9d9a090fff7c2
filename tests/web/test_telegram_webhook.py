"""Telegram webhook mode: with TELEGRAM_WEBHOOK_URL set, create_app builds the bot's own
dispatcher, mounts aiogram's SimpleRequestHandler with the secret token at the URL's path,
and registers the webhook and the command menu with Telegram in the background: a Telegram
that is down or refusing never keeps the web server (and its YooKassa route) from starting.
Updates are handled before they are answered, so a failed one is delivered again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiogram import Dispatcher
from aiogram.types import Message
from aiohttp.web import Application
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

import web.app as web_app
from billing.db import make_sessionmaker
from billing.models import User
from billing.settings import Settings
from sandbox._common import ServerHandle, free_port
from sandbox.telegram_client import TelegramEmulatorClient
from tests.web.conftest import TOKEN, stack_settings, wait_until
from tg.factory import make_bot
from tg.retry import BOT_CALLS
from web.app import create_app
from web.keys import NOTIFIER
from web.notify import POLICY as NOTIFY_POLICY

SECRET = "hook-secret-for-web-tests"
UPDATES_PATH = "/telegram/updates"


@pytest.fixture(autouse=True)
def _quick_telegram_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry setWebhook / setMyCommands within a fraction of a second, not minutes."""
    monkeypatch.setattr(web_app, "TELEGRAM_SETUP_BACKOFF", (0.05, 0.1), raising=False)
    monkeypatch.setattr(web_app, "TELEGRAM_SETUP_WAIT", 0.5, raising=False)


@pytest.fixture
def webhook_settings(db_url: str, redis_url: str, emulators):  # type: ignore[no-untyped-def]
    yk, tg = emulators
    port = free_port()
    settings = stack_settings(
        db_url,
        redis_url,
        yk.url,
        tg.url,
        TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}{UPDATES_PATH}",
        TELEGRAM_WEBHOOK_SECRET=SECRET,
    )
    return settings, port


@pytest.fixture
async def tg(
    emulators: tuple[ServerHandle, ServerHandle],
) -> AsyncIterator[TelegramEmulatorClient]:
    _, tg_handle = emulators
    async with TelegramEmulatorClient(tg_handle.url, token=TOKEN) as client:
        yield client


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


async def _webhook_set(tg: TelegramEmulatorClient) -> bool:
    return bool((await tg.bot_info())["webhook"])


async def _statuses(tg: TelegramEmulatorClient) -> list[Any]:
    """The HTTP status of every delivery of an update to the webhook, in order (None: no
    answer, or not yet)."""
    return [r.get("status") for r in (await tg.bot_info())["webhook_log"]]


async def _all_answered(tg: TelegramEmulatorClient) -> bool:
    log = (await tg.bot_info())["webhook_log"]
    return bool(log) and all("status" in r for r in log)


async def test_updates_arrive_through_the_web_server(
    engine: AsyncEngine, webhook_settings: tuple[Settings, int], tg: TelegramEmulatorClient
) -> None:
    settings, port = webhook_settings
    app = create_app(settings, sessionmaker=make_sessionmaker(engine))  # builds the rest
    async with ServerHandle(app, port=port) as server:
        await wait_until(lambda: _webhook_set(tg))
        info = await tg.bot_info()
        assert info["webhook"]["url"] == f"http://127.0.0.1:{port}{UPDATES_PATH}"
        assert info["webhook"]["secret_token"] == SECRET
        [set_webhook] = await tg.calls("setWebhook")
        assert set_webhook["params"]["secret_token"] == SECRET

        user = tg.user(9601)
        await user.send_text("/start")
        reply = await user.wait_for_text("Бесплатных операций", timeout=30)
        assert "4 из 4" in reply.text
        assert await tg.calls("sendMessage", chat_id=9601)  # the query below finds replies
        # Answered after the reply was sent: wait for the answer.
        await wait_until(lambda: _all_answered(tg))
        assert set(await _statuses(tg)) == {200}

        # A forged update without the secret is refused and does nothing.
        forged = {
            "update_id": 1,
            "message": {
                "message_id": 1,
                "date": 0,
                "chat": {"id": 9602, "type": "private"},
                "from": {"id": 9602, "is_bot": False, "first_name": "X"},
                "text": "/start",
            },
        }
        async with tg.session.post(server.url + UPDATES_PATH, json=forged) as resp:
            assert resp.status == 401
        async with tg.session.post(
            server.url + UPDATES_PATH,
            json=forged,
            headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"},
        ) as resp:
            assert resp.status == 401
        # Any attempt at all (a reply to an unknown chat fails, and is recorded too). Updates
        # are handled before they are answered, so a forged one that got through would have
        # been answered by now: in the background, this check ran before any reply existed.
        assert await tg.calls("sendMessage", chat_id=9602) == []

        # The YooKassa routes are there too.
        async with tg.session.get(server.url + "/healthz") as resp:
            assert resp.status == 200


async def test_the_command_menu_is_set_at_startup(
    engine: AsyncEngine, webhook_settings: tuple[Settings, int], tg: TelegramEmulatorClient
) -> None:
    settings, port = webhook_settings
    app = create_app(settings, sessionmaker=make_sessionmaker(engine))
    async with ServerHandle(app, port=port):

        async def both_languages() -> bool:
            return len(await tg.calls("setMyCommands")) == 2

        await wait_until(both_languages)
    by_language = {
        c["params"].get("language_code"): c["params"]["commands"]
        for c in await tg.calls("setMyCommands")
    }
    assert [c["command"] for c in by_language[None]] == [
        "start",
        "help",
        "balance",
        "plans",
        "history",
        "settings",
        "menu",
        "paysupport",
        "privacy",
    ]
    assert by_language["en"][0]["description"] == "Main menu"


async def test_the_server_starts_and_serves_yookassa_while_telegram_is_unreachable(
    engine: AsyncEngine,
    db_url: str,
    redis_url: str,
    emulators: tuple[ServerHandle, ServerHandle],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The start waits this long for a setWebhook that cannot succeed here: any wait proves
    # the server starts without it, a short one costs less.
    monkeypatch.setattr(web_app, "TELEGRAM_SETUP_WAIT", 0.05)
    yk, _ = emulators
    port = free_port()
    settings = stack_settings(
        db_url,
        redis_url,
        yk.url,
        f"http://127.0.0.1:{free_port()}",  # nothing listens there
        TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}{UPDATES_PATH}",
        TELEGRAM_WEBHOOK_SECRET=SECRET,
    )
    app = create_app(settings, sessionmaker=make_sessionmaker(engine))
    async with ServerHandle(app, port=port) as server, aiohttp.ClientSession() as http:
        async with http.get(server.url + "/healthz") as resp:
            assert resp.status == 200
        # The YooKassa route answers (a malformed notification: refused, but served).
        async with http.post(
            server.url + "/yookassa/webhook",
            data=b"{",
            headers={"Content-Type": "application/json"},
        ) as resp:
            assert resp.status == 400

        def retried(what: str) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                return any(f"{what} failed (attempt 2)" in m for m in _messages(caplog))

            return check

        await wait_until(retried("setWebhook"))
        await wait_until(retried("setMyCommands"))
    # Cancelled with the server, not left running.
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("telegram-")]
    assert not [m for m in _messages(caplog) if TOKEN in m]


async def test_the_webhook_and_the_menu_are_set_once_telegram_answers(
    engine: AsyncEngine,
    webhook_settings: tuple[Settings, int],
    tg: TelegramEmulatorClient,
    caplog: pytest.LogCaptureFixture,
    retry_waits: list[float],
) -> None:
    settings, port = webhook_settings
    await tg.fail_next(2, kind="500", methods=["setWebhook"])
    await tg.fail_next(1, kind="disconnect", methods=["setWebhook"])
    await tg.fail_next(1, kind="429", retry_after=1, methods=["setMyCommands"])
    app = create_app(settings, sessionmaker=make_sessionmaker(engine))
    async with ServerHandle(app, port=port):
        await wait_until(lambda: _webhook_set(tg))

        async def menu_set() -> bool:
            return any("setMyCommands done" in m for m in _messages(caplog))

        await wait_until(menu_set)
        user = tg.user(9603)
        await user.send_text("/start")
        await user.wait_for_text("Бесплатных операций", timeout=30)
    messages = _messages(caplog)
    for attempt in (1, 2, 3):
        assert any(f"setWebhook failed (attempt {attempt})" in m for m in messages)
    assert any("setWebhook done (attempt 4)" in m for m in messages)
    assert any("setMyCommands failed (attempt 1)" in m for m in messages)
    assert any(w >= 1.0 for w in retry_waits)  # the 429's retry_after was waited


async def test_a_reply_that_meets_a_5xx_or_a_429_is_sent_again(
    engine: AsyncEngine,
    webhook_settings: tuple[Settings, int],
    tg: TelegramEmulatorClient,
    retry_waits: list[float],
) -> None:
    settings, port = webhook_settings
    app = create_app(settings, sessionmaker=make_sessionmaker(engine))
    async with ServerHandle(app, port=port):
        await wait_until(lambda: _webhook_set(tg))
        await tg.fail_next(1, kind="500", methods=["sendMessage"])
        await tg.fail_next(1, kind="429", retry_after=1, methods=["sendMessage"])
        user = tg.user(9604)
        await user.send_text("/start")
        reply = await user.wait_for_text("Бесплатных операций", timeout=15)
        assert "4 из 4" in reply.text
    # The session's retry waited its backoff after the 500, Telegram's retry_after after the 429.
    backoff, flood = retry_waits
    assert backoff == BOT_CALLS.backoff[0]
    assert 1.0 <= flood <= 1.0 + BOT_CALLS.flood_jitter


async def test_payment_messages_are_retried_by_the_notifier_only(
    engine: AsyncEngine,
    webhook_settings: tuple[Settings, int],
    tg: TelegramEmulatorClient,
    caplog: pytest.LogCaptureFixture,
    retry_waits: list[float],
) -> None:
    """The notifier retries its own messages within its deadline: the session's retry,
    there for the handlers' replies, must not retry them again (up to 16 sends)."""
    settings, port = webhook_settings
    app = create_app(settings, sessionmaker=make_sessionmaker(engine))
    async with ServerHandle(app, port=port):
        await wait_until(lambda: _webhook_set(tg))
        user = tg.user(9605)
        await user.send_text("/start")
        await user.wait_for_text("Бесплатных операций", timeout=30)
        await tg.fail_next(1, kind="500", methods=["sendMessage"])
        assert await app[NOTIFIER].send(9605, "Баланс пополнен", what="test") is True
        assert [m.text for m in await user.bot_messages()].count("Баланс пополнен") == 1
    # The 500 reached the notifier, which retried; the session's retry stayed out.
    assert any("test message to chat 9605 failed (attempt 1)" in m for m in _messages(caplog))
    assert not [r for r in caplog.records if r.name == "tg.retry"]
    assert retry_waits == [NOTIFY_POLICY.backoff[0]]  # one wait: the notifier's


def _dispatcher(handler: Any) -> Dispatcher:
    dispatcher = Dispatcher()
    dispatcher.message.register(handler)
    return dispatcher


async def test_an_update_whose_handling_failed_is_delivered_again(
    engine: AsyncEngine, webhook_settings: tuple[Settings, int], tg: TelegramEmulatorClient
) -> None:
    settings, port = webhook_settings
    attempts: list[int] = []

    async def flaky(message: Message) -> None:
        attempts.append(message.message_id)
        if len(attempts) == 1:
            raise RuntimeError("the first attempt fails")
        await message.answer("handled")

    app = create_app(
        settings, sessionmaker=make_sessionmaker(engine), dispatcher=_dispatcher(flaky)
    )
    async with ServerHandle(app, port=port):
        await wait_until(lambda: _webhook_set(tg))
        user = tg.user(9606)
        await user.send_text("hello")
        await user.wait_for_text("handled", timeout=15)
        statuses = [s for s in await _statuses(tg) if s]
    assert statuses[:2] == [500, 200]  # not 200 for the failed attempt: Telegram retried
    assert len(attempts) == 2


async def test_a_shutdown_waits_for_the_update_in_flight(
    engine: AsyncEngine, webhook_settings: tuple[Settings, int], tg: TelegramEmulatorClient
) -> None:
    settings, port = webhook_settings
    started = asyncio.Event()
    stopping = asyncio.Event()

    async def slow(message: Message) -> None:
        started.set()
        await stopping.wait()  # still in flight when the shutdown begins
        await message.answer("finished")

    app = create_app(
        settings, sessionmaker=make_sessionmaker(engine), dispatcher=_dispatcher(slow)
    )

    async def shutdown_begun(_: Application) -> None:
        stopping.set()

    app.on_shutdown.append(shutdown_begun)
    server = await ServerHandle(app, port=port).start()
    try:
        await wait_until(lambda: _webhook_set(tg))
        user = tg.user(9607)
        await user.send_text("hello")
        await asyncio.wait_for(started.wait(), 15)
    finally:
        await server.stop()
    # The reply went out before the server stopped (its bot was not closed under it).
    assert [m.text for m in await user.bot_messages()] == ["finished"]
    assert [s for s in await _statuses(tg) if s] == [200]


async def test_forged_updates_are_refused_and_logged_without_the_token(
    engine: AsyncEngine,
    webhook_settings: tuple[Settings, int],
    tg: TelegramEmulatorClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings, port = webhook_settings
    app = create_app(settings, sessionmaker=make_sessionmaker(engine))
    async with ServerHandle(app, port=port) as server:
        url = server.url + UPDATES_PATH
        guessed = "guessed-secret-token-0123"
        async with tg.session.post(url, json={"update_id": 1}) as resp:
            assert resp.status == 401
        async with tg.session.post(
            url, json={"update_id": 2}, headers={"X-Telegram-Bot-Api-Secret-Token": guessed}
        ) as resp:
            assert resp.status == 401
        async with tg.session.get(url) as resp:
            assert resp.status == 405
    messages = _messages(caplog)
    assert any("Telegram update refused (401): no secret token" in m for m in messages)
    assert any("Telegram update refused (401): wrong secret token" in m for m in messages)
    assert any("request refused (405)" in m and UPDATES_PATH in m for m in messages)
    assert not [m for m in messages if guessed in m or SECRET in m or TOKEN in m]


def _update(update_id: int, *, user: int, chat: int, message: int, text: str) -> dict:
    return {
        "update_id": update_id,
        "message": {
            "message_id": message,
            "date": 0,
            "chat": {"id": chat, "type": "private"},
            "from": {"id": user, "is_bot": False, "first_name": "X"},
            "text": text,
        },
    }


async def test_an_update_with_ids_past_64_bits_is_dropped_before_the_database(
    engine: AsyncEngine,
    webhook_settings: tuple[Settings, int],
    tg: TelegramEmulatorClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings, port = webhook_settings
    caplog.set_level(logging.INFO)
    huge = 10**20
    forged = [
        _update(11, user=huge, chat=huge, message=1, text="/start"),
        _update(12, user=9611, chat=-huge, message=1, text="/balance"),
        _update(13, user=9612, chat=9612, message=huge, text="/start"),
        _update(huge, user=9613, chat=9613, message=1, text="/start"),
    ]
    app = create_app(settings, sessionmaker=make_sessionmaker(engine))
    async with ServerHandle(app, port=port) as server:
        for update in forged:
            async with tg.session.post(
                server.url + UPDATES_PATH,
                json=update,
                headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
            ) as resp:
                assert resp.status == 200  # handled: dropped, not to be delivered again
    async with make_sessionmaker(engine)() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 0
    dropped = [m for m in _messages(caplog) if "out of the 64-bit range" in m]
    assert len(dropped) == len(forged)
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert bad == [], [r.getMessage() for r in bad]


def test_a_webhook_path_that_collides_with_a_route_is_refused(
    db_url: str,
    redis_url: str,
    emulators,  # type: ignore[no-untyped-def]
) -> None:
    yk, tg = emulators
    settings = stack_settings(
        db_url,
        redis_url,
        yk.url,
        tg.url,
        TELEGRAM_WEBHOOK_URL="https://example.org/yookassa/webhook",
        TELEGRAM_WEBHOOK_SECRET=SECRET,
    )
    with pytest.raises(ValueError, match="collides"):
        create_app(settings, bot=make_bot(settings), dispatcher=object())  # type: ignore[arg-type]


async def test_without_a_webhook_url_no_telegram_route_is_mounted(
    engine: AsyncEngine,
    db_url: str,
    redis_url: str,
    emulators,  # type: ignore[no-untyped-def]
) -> None:
    yk, tg = emulators
    settings: Settings = stack_settings(db_url, redis_url, yk.url, tg.url)
    app = create_app(settings, sessionmaker=make_sessionmaker(engine))
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    paths = {p for p in paths if not p.startswith("/api/v1/")}  # the operator API
    paths = {p for p in paths if p != "/app" and not p.startswith("/app/")}  # the Mini App
    assert paths == {
        "/yookassa/webhook",
        "/yookassa/health",
        "/healthz",
        "/metrics",
        "/fal/webhook",
    }
    async with ServerHandle(app):
        pass
    assert not await tg_calls_made(tg.url)


async def tg_calls_made(url: str) -> list[Any]:
    async with TelegramEmulatorClient(url, token=TOKEN) as client:
        return await client.calls(["setWebhook", "setMyCommands"])
