"""The web server under test: real PostgreSQL, the YooKassa and Telegram emulators, a real
port. ``stack`` builds the whole thing; ``make_stack(**settings)`` builds variants."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from billing import accounts
from billing.db import make_sessionmaker
from billing.models import LedgerEntry, Payment, User
from billing.payments import TopUpStarted, start_topup
from billing.settings import Settings
from billing.yookassa import YooKassaGateway
from sandbox import telegram as telegram_emulator
from sandbox import yookassa as yookassa_emulator
from sandbox._common import ServerHandle
from sandbox.telegram_client import TelegramEmulatorClient, TelegramUser
from sandbox.yookassa_client import YooKassaEmulatorClient
from tests.conftest import close_bot, make_settings
from tg.factory import make_bot
from web.app import WEBHOOK_PATH, create_app
from web.keys import NOTIFIER

SHOP_ID = "100500"
SECRET_KEY = "sandbox_secret_key_for_tests"
TOKEN = "424242:web-tests-token"


@dataclass
class Stack:
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    gateway: YooKassaGateway
    yk: YooKassaEmulatorClient
    tg: TelegramEmulatorClient
    server: ServerHandle
    http: aiohttp.ClientSession
    _users: int = field(default=0)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def webhook_url(self) -> str:
        return self.server.url + WEBHOOK_PATH

    async def post_json(
        self, body: Any, *, headers: dict[str, str] | None = None, path: str = WEBHOOK_PATH
    ) -> tuple[int, Any]:
        async with self.http.post(self.url + path, json=body, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)

    async def post_raw(
        self, data: bytes, content_type: str, *, headers: dict[str, str] | None = None
    ) -> tuple[int, str]:
        async with self.http.post(
            self.webhook_url, data=data, headers={"Content-Type": content_type, **(headers or {})}
        ) as resp:
            return resp.status, await resp.text()

    async def new_user(
        self, telegram_id: int, *, language: str = "ru"
    ) -> tuple[int, TelegramUser]:
        """A user who has talked to the bot (so the emulator has the chat) and has a row."""
        tg_user = self.tg.user(telegram_id, language=language)
        await tg_user.send_text("/start")
        async with self.sessionmaker() as session:
            user, _ = await accounts.get_or_create_user(
                session, telegram_id=telegram_id, free_operations=0, language=language
            )
            await session.commit()
        return user.id, tg_user

    async def topup(self, user_id: int, amount: int = 30_000) -> TopUpStarted:
        """A real top-up: our pending row, then the payment in the YooKassa emulator."""
        return await start_topup(
            self.sessionmaker, self.gateway, self.settings, user_id=user_id, amount=amount
        )

    async def balance(self, user_id: int) -> int:
        async with self.sessionmaker() as session:
            return int(await session.scalar(select(User.balance).where(User.id == user_id)))

    async def payment_row(self, payment_id: int) -> Payment:
        async with self.sessionmaker() as session:
            row = await session.get(Payment, payment_id)
            assert row is not None
            return row

    async def ledger_count(self, kind: str | None = None) -> int:
        async with self.sessionmaker() as session:
            query = select(func.count()).select_from(LedgerEntry)
            if kind is not None:
                query = query.where(LedgerEntry.kind == kind)
            return int(await session.scalar(query))

    async def sent_texts(self, chat_id: int) -> list[str]:
        """Texts of every sendMessage the bot made to this chat (the emulator's call log)."""
        calls = await self.tg.calls("sendMessage", chat_id=chat_id)
        return [str(c["params"].get("text", "")) for c in calls if c.get("ok", True)]

    async def settle(self) -> None:
        """Wait until the web app has no user message in flight."""
        await self.server.app[NOTIFIER].drain(timeout=30)


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:  # noqa: ASYNC109
    """Poll ``check`` until it is true; fail after a generous ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


@pytest.fixture
async def emulators() -> AsyncIterator[tuple[ServerHandle, ServerHandle]]:
    yk = ServerHandle(
        yookassa_emulator.create_app(shop_id=SHOP_ID, secret_key=SECRET_KEY, notify_backoff=0.05)
    )
    tg = ServerHandle(telegram_emulator.create_app())
    await yk.start()
    await tg.start()
    try:
        yield yk, tg
    finally:
        await yk.stop()
        await tg.stop()


def stack_settings(
    database_url: str, redis_url: str, yk_url: str, tg_url: str, **overrides: object
) -> Settings:
    values: dict[str, object] = {
        "YOOKASSA_SHOP_ID": SHOP_ID,
        "YOOKASSA_SECRET_KEY": SECRET_KEY,
        "YOOKASSA_API_URL": f"{yk_url}/v3",
        "YOOKASSA_TIMEOUT": 5.0,
        "TELEGRAM_API_URL": tg_url,
        "BOT_TOKEN": TOKEN,
        # The emulator posts from 127.0.0.1: trust it explicitly (the default refuses it).
        "YOOKASSA_TRUSTED_NETWORKS": "127.0.0.1/32",
    }
    values.update(overrides)
    return make_settings(database_url, redis_url, **values)


StackFactory = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def make_stack(
    engine: AsyncEngine,
    db_url: str,
    redis_url: str,
    emulators: tuple[ServerHandle, ServerHandle],
) -> AsyncIterator[StackFactory]:
    yk_handle, tg_handle = emulators
    started: list[Stack] = []
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
    yk = YooKassaEmulatorClient(yk_handle.url)
    tg = TelegramEmulatorClient(tg_handle.url, token=TOKEN)

    async def factory(
        *, sessionmaker: async_sessionmaker[AsyncSession] | None = None, **overrides: object
    ) -> Stack:
        settings = stack_settings(db_url, redis_url, yk_handle.url, tg_handle.url, **overrides)
        sm = sessionmaker or make_sessionmaker(engine)
        bot = make_bot(settings)
        app = create_app(settings, sessionmaker=sm, bot=bot)
        server = await ServerHandle(app).start()
        stack = Stack(settings, sm, YooKassaGateway(settings), yk, tg, server, http)
        await yk.set_webhook_url(stack.webhook_url)
        started.append(stack)
        # the app does not own a bot it was given: close it after the server
        stack._bot = bot  # type: ignore[attr-defined]
        return stack

    try:
        yield factory
    finally:
        for stack in started:
            await stack.server.stop()
            await close_bot(stack._bot)  # type: ignore[attr-defined]
        await http.close()
        await yk.close()
        await tg.close()


@pytest.fixture
async def stack(make_stack: StackFactory) -> Stack:
    return await make_stack()


@pytest.fixture(autouse=True)
def _web_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="web")
    caplog.set_level(logging.INFO, logger="billing")
