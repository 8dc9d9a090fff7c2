"""Fixtures for the emulator tests: each test gets fresh emulators on free ports."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from PIL import Image

from sandbox._common import ServerHandle
from sandbox.telegram import create_app as create_telegram_app
from sandbox.telegram_client import TelegramEmulatorClient
from sandbox.yookassa import create_app as create_yookassa_app
from sandbox.yookassa_client import YooKassaEmulatorClient
from tests.conftest import close_bot

BOT_TOKEN = "123456789:AAH-sandbox_token_for_tests_0123456"
SHOP_ID = "100500"
SECRET_KEY = "test_SecretKey_sandbox"


def _make_image(
    width: int = 640, height: int = 480, color: str = "red", fmt: str = "JPEG"
) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, fmt)
    return buf.getvalue()


@pytest.fixture
def make_image() -> Callable[..., bytes]:
    return _make_image


@pytest.fixture
def bot_token() -> str:
    return BOT_TOKEN


@pytest.fixture
def shop() -> tuple[str, str]:
    return SHOP_ID, SECRET_KEY


@pytest.fixture
async def tg_server() -> AsyncIterator[ServerHandle]:
    app = create_telegram_app(webhook_backoff=0.01)
    async with ServerHandle(app) as server:
        yield server


@pytest.fixture
async def tg(tg_server: ServerHandle) -> AsyncIterator[TelegramEmulatorClient]:
    async with TelegramEmulatorClient(tg_server.url) as client:
        yield client


@pytest.fixture
async def bot(tg_server: ServerHandle) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(tg_server.url))
    bot = Bot(BOT_TOKEN, session=session)
    yield bot
    await close_bot(bot)


@pytest.fixture
async def yk_server() -> AsyncIterator[ServerHandle]:
    app = create_yookassa_app(shop_id=SHOP_ID, secret_key=SECRET_KEY, notify_backoff=0.01)
    async with ServerHandle(app) as server:
        yield server


@pytest.fixture
async def yk(yk_server: ServerHandle) -> AsyncIterator[YooKassaEmulatorClient]:
    async with YooKassaEmulatorClient(yk_server.url) as client:
        yield client


class Receiver:
    """A tiny HTTP endpoint that records POSTs; ``statuses`` are answered in order, then 200.

    ``wait(n)`` returns once n requests arrived (no sleeping in tests).
    """

    def __init__(self) -> None:
        from aiohttp import web

        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self.reply: dict | None = None
        self._event = None
        self.app = web.Application()
        self.app.router.add_post("/{tail:.*}", self._handle)
        self.server = ServerHandle(self.app)

    @property
    def url(self) -> str:
        return self.server.url + "/hook"

    async def _handle(self, request):
        import asyncio

        from aiohttp import web

        self.requests.append(
            {
                "path": request.path,
                "headers": dict(request.headers),
                "body": await request.read(),
                "remote": request.remote,
            }
        )
        if self._event is None:
            self._event = asyncio.Event()
        self._event.set()
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200 and self.reply is not None:
            return web.json_response(self.reply)
        return web.Response(status=status, text="ok" if status == 200 else "fail")

    async def wait(self, count: int, timeout: float = 5.0) -> list[dict]:  # noqa: ASYNC109
        import asyncio

        async with asyncio.timeout(timeout):
            while len(self.requests) < count:
                if self._event is None:
                    self._event = asyncio.Event()
                self._event.clear()
                await self._event.wait()
        return self.requests


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.server.start()
    yield r
    await r.server.stop()
