"""tg.session: no exception out of the Bot made by ``make_bot`` names the token —
not its text, its repr, its fields or what is chained to it — and each keeps its type and
status, so the worker still tells a transient failure from a permanent one.

A Bot API stand-in (aiohttp, in the test's loop) fails the ways that carry the URL: a
redirect loop (aiohttp's TooManyRedirects, which aiogram turns into TelegramNetworkError),
a gateway page that echoes the request's path (ClientDecodeError), file downloads answered
502 and 404 (ClientResponseError), and a header probe's partial download."""

from __future__ import annotations

import traceback
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramBadRequest,
    TelegramNetworkError,
    TelegramRetryAfter,
)
from aiogram.types import BufferedInputFile
from aiohttp import web

from bot.image_header import HeaderUnavailable, read_image_header
from sandbox._common import ServerHandle
from tests.conftest import close_bot, make_settings
from tg.factory import make_bot
from workers.failures import classify

SECRET = "LEAKCHECK-session-5e1b7c"
TOKEN = f"424242:{SECRET}"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


async def _api(request: web.Request) -> web.StreamResponse:
    method = request.match_info["method"].lower()
    if method == "sendphoto":  # a proxy that redirects forever
        raise web.HTTPFound(request.path)
    if method == "getfile":
        file_id = (await request.post()).get("file_id")
        if file_id == "echo":  # an error page that shows the path asked for
            return web.Response(
                status=502, content_type="text/html", text=f"<h1>502</h1>{request.path}"
            )
        path = f"photos/{file_id}"
        return web.json_response(
            {"ok": True, "result": {"file_id": file_id, "file_path": path, "file_unique_id": "u"}}
        )
    if method == "sendmessage":
        return web.json_response(
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 7",
                "parameters": {"retry_after": 7},
            },
            status=429,
        )
    return web.json_response(
        {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"},
        status=400,
    )


async def _file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name == "ok.png":
        return web.Response(body=PNG)
    return web.Response(status=int(name.split(".")[0]), text="no")


@pytest.fixture
async def bot() -> AsyncIterator[Bot]:
    app = web.Application()
    app.router.add_route("*", "/bot{token}/{method}", _api)
    app.router.add_get("/file/bot{token}/photos/{name}", _file)
    async with ServerHandle(app) as server:
        settings = make_settings(
            "sqlite+aiosqlite:///:memory:", TELEGRAM_API_URL=server.url, BOT_TOKEN=TOKEN
        )
        made = make_bot(settings, timeout=10)
        try:
            yield made
        finally:
            await close_bot(made)


def assert_no_token(exc: BaseException) -> None:
    """Nothing that a log, a repr or a stored traceback shows of ``exc`` names the token."""
    shown = [
        "".join(traceback.format_exception(exc)),
        repr(exc),
        *map(repr, exc.args),
        *map(repr, vars(exc).values()),
    ]
    for text in shown:
        assert SECRET not in text, text
    assert exc.__cause__ is None or SECRET not in repr(exc.__cause__)


async def test_a_redirect_loop_on_send_photo_is_a_network_error_without_the_token(bot) -> None:
    with pytest.raises(TelegramNetworkError) as raised:
        await bot.send_photo(1, BufferedInputFile(PNG, "x.png"))
    assert "TooManyRedirects" in raised.value.message
    assert "/bot***/sendPhoto" in raised.value.message
    assert_no_token(raised.value)
    assert classify(raised.value).transient


async def test_an_error_page_echoing_the_path_is_a_decode_error_without_the_token(bot) -> None:
    with pytest.raises(ClientDecodeError) as raised:
        await bot.get_file("echo")
    assert "/bot***/getFile" in str(raised.value)
    assert_no_token(raised.value)
    assert classify(raised.value).transient


@pytest.mark.parametrize(("status", "transient"), [(502, True), (404, False)])
async def test_a_failed_download_keeps_its_status_but_not_the_token(
    bot, status: int, transient: bool
) -> None:
    with pytest.raises(aiohttp.ClientResponseError) as raised:
        await bot.download_file(f"photos/{status}.jpg")
    assert raised.value.status == status
    assert "/file/bot***/photos/" in str(raised.value)
    assert_no_token(raised.value)
    assert classify(raised.value).transient is transient


async def test_a_header_probe_that_fails_names_no_token(bot) -> None:
    with pytest.raises(HeaderUnavailable) as raised:
        await read_image_header(bot, "404.png", max_bytes=1024)
    assert_no_token(raised.value)
    assert_no_token(raised.value.__cause__)


async def test_only_the_errors_naming_the_token_are_replaced(bot) -> None:
    with pytest.raises(TelegramRetryAfter) as flood:
        await bot.send_message(1, "x")
    assert flood.value.retry_after == 7  # the worker's flood-wait logic reads it
    with pytest.raises(TelegramBadRequest) as refused:
        await bot.delete_message(1, 2)
    assert refused.value.message == "Bad Request: chat not found"
    data = await bot.download_file("photos/ok.png")
    assert data is not None and data.read() == PNG
    with pytest.raises(aiohttp.ClientResponseError) as failed:
        await bot.download_file("photos/503.png")
    assert failed.value.status == 503 and failed.value.__cause__ is None
    assert_no_token(failed.value)
