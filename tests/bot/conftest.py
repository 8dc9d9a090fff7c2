"""The bot's conversations: the real dispatcher fed each update with ``dp.feed_update``, a
bot whose session the Telegram emulator answers in this process (and records each request:
``app.sent(...)``), real PostgreSQL and Redis, real RQ, and the YooKassa emulator for
top-ups. ``tg`` is the emulator's user-side client, in-process too.

The same emulator is served over HTTP by ``tg_server`` for the tests of the real thing:
``python -m bot`` and the worker processes, webhook mode, and ``start_bot(polling=True)``
(the dispatcher long-polling it, as in production)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiohttp import web
from redis.asyncio import Redis
from rq import Queue
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from billing.db import make_sessionmaker
from billing.models import LedgerEntry, Operation, Payment, User
from billing.settings import Settings
from billing.yookassa import YooKassaGateway
from bot.app import build_dispatcher, make_queue
from sandbox._common import ServerHandle
from sandbox.telegram import EMU_KEY
from sandbox.telegram import create_app as create_telegram_app
from sandbox.telegram_inprocess import (
    EmulatorSession,
    FedDispatcher,
    LocalTelegramClient,
    SentRequest,
)
from sandbox.yookassa import create_app as create_yookassa_app
from sandbox.yookassa_client import YooKassaEmulatorClient
from tests.conftest import close_bot, make_settings
from tg.factory import make_bot

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
BOT_TOKEN = "424242:bot-tests-token_for_the_emulator"
SHOP_ID = "506751"
SECRET_KEY = "test_bot_secret_key_for_the_emulator"


def process_env(db_url: str, redis_url: str, tg_url: str, **extra: str) -> dict[str, str]:
    """The environment of a `python -m bot` / `python -m workers` child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YOOKASSA_", "FAL_"))}
    env.update(
        ENVIRONMENT="test",
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        TELEGRAM_API_URL=tg_url,
        BOT_TOKEN=BOT_TOKEN,
        PYTHONPATH=str(ROOT),
    )
    env.pop("TELEGRAM_WEBHOOK_URL", None)
    env.update(extra)
    return env


async def run_worker_burst(cwd: Path, db_url: str, redis_url: str, tg_url: str) -> str:
    """A real ``python -m workers --burst --no-sweeper``: runs the queued jobs, then exits 0;
    its output (for a failing assertion's message)."""
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workers",
        "--burst",
        "--no-sweeper",
        cwd=cwd,
        env=process_env(db_url, redis_url, tg_url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(worker.communicate(), timeout=300)
    assert worker.returncode == 0, output.decode()[-3000:]
    return output.decode()


@pytest.fixture
def photo() -> bytes:
    """A real photo with a face (the astronaut)."""
    return (FIXTURES / "astronaut.jpg").read_bytes()


@pytest.fixture
def photo2() -> bytes:
    return (FIXTURES / "hopper.jpg").read_bytes()


@pytest.fixture
async def tg_app() -> AsyncIterator[web.Application]:
    """The Telegram emulator (``tg_app[EMU_KEY]``), not served unless ``tg_server`` is used."""
    app = create_telegram_app()
    yield app
    await app[EMU_KEY].shutdown()


@pytest.fixture
async def tg_server(tg_app: web.Application) -> AsyncIterator[ServerHandle]:
    """The same emulator over HTTP, for processes, webhooks and polling."""
    async with ServerHandle(tg_app) as server:
        yield server


@pytest.fixture
def tg(tg_app: web.Application) -> LocalTelegramClient:
    """Users of the emulator (``tg.user(id)``), in this process."""
    return LocalTelegramClient(tg_app[EMU_KEY], token=BOT_TOKEN)


@pytest.fixture
async def yk_server() -> AsyncIterator[ServerHandle]:
    app = create_yookassa_app(shop_id=SHOP_ID, secret_key=SECRET_KEY, auto_notify=False)
    async with ServerHandle(app) as server:
        yield server


@pytest.fixture
async def yk(yk_server: ServerHandle) -> AsyncIterator[YooKassaEmulatorClient]:
    async with YooKassaEmulatorClient(yk_server.url) as client:
        yield client


@dataclass
class RunningBot:
    settings: Settings
    dispatcher: Dispatcher
    bot: Bot
    sessionmaker: async_sessionmaker[AsyncSession]
    queue: Queue
    redis: Redis
    feed: FedDispatcher | None = None  # updates fed in-process
    polling: asyncio.Task[None] | None = None  # or long polling over HTTP

    async def stop(self) -> None:
        """Stop taking updates (as a stopped process would); the next bot gets the rest."""
        if self.feed is not None:
            await self.feed.stop()
        if self.polling is not None:
            with contextlib.suppress(RuntimeError):  # polling already stopped
                await self.dispatcher.stop_polling()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self.polling, timeout=30)

    def sent(self, *methods: str) -> list[SentRequest]:
        """The Bot API requests this bot made (of these methods), with their answers."""
        assert isinstance(self.bot.session, EmulatorSession), "recorded in-process only"
        return self.bot.session.sent(*methods)

    async def scalar(self, statement: Any) -> Any:
        async with self.sessionmaker() as session:
            return await session.scalar(statement)

    async def user(self, telegram_id: int) -> User | None:
        async with self.sessionmaker() as session:
            return await session.scalar(select(User).where(User.telegram_id == telegram_id))

    async def operations(self) -> list[Operation]:
        async with self.sessionmaker() as session:
            return list((await session.scalars(select(Operation).order_by(Operation.id))).all())

    async def payments(self) -> list[Payment]:
        async with self.sessionmaker() as session:
            return list((await session.scalars(select(Payment).order_by(Payment.id))).all())

    async def ledger_count(self) -> int:
        return int(await self.scalar(select(func.count()).select_from(LedgerEntry)))

    def job_ids(self) -> list[str]:
        return list(self.queue.get_job_ids())


StartBot = Callable[..., Awaitable[RunningBot]]


@pytest.fixture
async def start_bot(
    engine: AsyncEngine,
    db_url: str,
    redis_url: str,
    tg_app: web.Application,
    yk_server: ServerHandle,
) -> AsyncIterator[StartBot]:
    """start_bot(**settings_overrides, queue=None, yookassa=True, polling=False) → the
    bot's dispatcher in this event loop, stopped when the test ends. It is fed the updates
    in-process; ``polling=True`` (with TELEGRAM_API_URL=tg_server.url) long-polls instead."""
    running: list[RunningBot] = []
    redises: list[Redis] = []
    emulator = tg_app[EMU_KEY]

    async def start(
        *,
        queue: Queue | None = None,
        yookassa: bool = True,
        polling: bool = False,
        **overrides: Any,
    ) -> RunningBot:
        values: dict[str, Any] = {
            # Only what the test runs besides the bot (a worker) or polling goes there.
            "TELEGRAM_API_URL": "http://telegram.in-process",
            "BOT_TOKEN": BOT_TOKEN,
            "THROTTLE_BURST": 1000,
            "THROTTLE_RATE_PER_SECOND": 1000.0,
            "YOOKASSA_API_URL": f"{yk_server.url}/v3",
            "YOOKASSA_RETURN_URL": "https://t.me/media_lab_bot",
            "YOOKASSA_TIMEOUT": 5.0,
        }
        if yookassa:
            values.update(YOOKASSA_SHOP_ID=SHOP_ID, YOOKASSA_SECRET_KEY=SECRET_KEY)
        values.update(overrides)
        settings = make_settings(db_url, redis_url, **values)
        redis = Redis.from_url(redis_url)
        redises.append(redis)
        sessionmaker = make_sessionmaker(engine)
        queue = queue if queue is not None else make_queue(settings)
        gateway = YooKassaGateway(settings) if settings.yookassa_configured else None
        dispatcher = build_dispatcher(
            settings=settings,
            sessionmaker=sessionmaker,
            redis=redis,
            gateway=gateway,
            queue=queue,
        )
        bot = make_bot(settings, session=None if polling else EmulatorSession(emulator))
        handle = RunningBot(settings, dispatcher, bot, sessionmaker, queue, redis)
        if polling:
            handle.polling = asyncio.create_task(
                dispatcher.start_polling(bot, handle_signals=False, polling_timeout=1)
            )
        else:
            handle.feed = FedDispatcher(dispatcher, bot, emulator).start()
        running.append(handle)
        return handle

    yield start
    for handle in running:
        await handle.stop()
        await handle.dispatcher.storage.close()
        await close_bot(handle.bot)
    for redis in redises:
        await redis.aclose()


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:  # noqa: ASYNC109
    """Poll a condition (never a fixed sleep) with a generous timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.05)
