"""bot.image_header: an image document's header, read through the Bot API before the charge
(a fake Bot: what is fetched, when the download stops, how failures are told apart)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest, TelegramServerError
from aiogram.methods import GetFile
from aiogram.types import Chat, Document, File, Message, PhotoSize
from PIL import Image

from bot.image_header import (
    CHUNK_BYTES,
    FileTooBig,
    HeaderUnavailable,
    read_image_header,
)
from bot.inputs import Answer, Ready, assess_message
from imaging.errors import ImageTooLarge, InvalidImage
from tests.conftest import make_settings

MB = 1024 * 1024


class FakeSession:
    def __init__(self, data: bytes, fail_after: int | None = None) -> None:
        self.api = TelegramAPIServer.from_base("http://telegram.invalid")
        self.data = data
        self.fail_after = fail_after
        self.chunks_sent = 0
        self.closed = False
        self.urls: list[str] = []

    async def stream_content(self, url: str, **_: Any) -> AsyncIterator[bytes]:
        self.urls.append(url)
        try:
            for start in range(0, len(self.data), CHUNK_BYTES):
                if self.fail_after is not None and self.chunks_sent >= self.fail_after:
                    raise aiohttp.ClientPayloadError("connection reset")
                self.chunks_sent += 1
                yield self.data[start : start + CHUNK_BYTES]
        finally:
            self.closed = True


class FakeBot:
    token = "42:fake"

    def __init__(
        self,
        data: bytes,
        *,
        file_size: int | None = -1,
        get_file_error: Exception | None = None,
        fail_after: int | None = None,
    ) -> None:
        self.session = FakeSession(data, fail_after)
        self.file_size = len(data) if file_size == -1 else file_size
        self.get_file_error = get_file_error
        self.get_file_calls = 0

    async def get_file(self, file_id: str) -> File:
        self.get_file_calls += 1
        if self.get_file_error is not None:
            raise self.get_file_error
        return File(
            file_id=file_id,
            file_unique_id="u",
            file_size=self.file_size,
            file_path="documents/file_1.bin",
        )


def _encode(img: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **options)
    return buffer.getvalue()


def _noise(width: int, height: int) -> Image.Image:
    rng = np.random.default_rng(7)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


async def test_a_large_jpeg_is_read_only_until_its_header() -> None:
    data = _encode(_noise(1600, 1200), "JPEG", quality=95)
    assert len(data) > 10 * CHUNK_BYTES
    bot = FakeBot(data)
    info = await read_image_header(bot, "doc", max_bytes=20 * MB)  # type: ignore[arg-type]
    assert (info.width, info.height, info.format) == (1600, 1200, "jpeg")
    assert bot.session.chunks_sent == 1  # the rest of the file was never fetched
    assert bot.session.closed
    assert bot.session.urls == ["http://telegram.invalid/file/bot42:fake/documents/file_1.bin"]


async def test_bytes_that_are_no_image_are_read_to_the_end_then_refused() -> None:
    data = b"\xff\xd8\xff\xe0" + b"not a jpeg at all " * 20_000
    bot = FakeBot(data)
    with pytest.raises(InvalidImage):
        await read_image_header(bot, "doc", max_bytes=20 * MB)  # type: ignore[arg-type]
    assert bot.session.chunks_sent == -(-len(data) // CHUNK_BYTES)
    assert bot.session.closed


async def test_a_header_naming_too_many_pixels_is_refused() -> None:
    data = _encode(Image.new("L", (17_000, 2)), "PNG")
    with pytest.raises(ImageTooLarge):
        await read_image_header(FakeBot(data), "doc", max_bytes=20 * MB)  # type: ignore[arg-type]


async def test_the_size_limit_is_kept_before_and_during_the_download() -> None:
    data = b"\x00" * (3 * CHUNK_BYTES)
    told = FakeBot(data, file_size=30 * MB)
    with pytest.raises(FileTooBig):
        await read_image_header(told, "doc", max_bytes=20 * MB)  # type: ignore[arg-type]
    assert told.session.chunks_sent == 0  # nothing downloaded
    untold = FakeBot(data, file_size=None)
    with pytest.raises(FileTooBig):
        await read_image_header(untold, "doc", max_bytes=2 * CHUNK_BYTES)  # type: ignore[arg-type]
    assert untold.session.closed
    refused = FakeBot(
        data, get_file_error=TelegramBadRequest(GetFile(file_id="d"), "file is too big")
    )
    with pytest.raises(FileTooBig):
        await read_image_header(refused, "doc", max_bytes=20 * MB)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bot",
    [
        FakeBot(b"", get_file_error=TelegramServerError(GetFile(file_id="d"), "Bad Gateway")),
        FakeBot(b"", get_file_error=aiohttp.ClientConnectionError("refused")),
        FakeBot(b"x" * (4 * CHUNK_BYTES), fail_after=1),
    ],
    ids=["getFile-5xx", "getFile-network", "download-cut"],
)
async def test_telegram_or_network_failures_mean_try_again(bot: FakeBot) -> None:
    with pytest.raises(HeaderUnavailable):
        await read_image_header(bot, "doc", max_bytes=20 * MB)  # type: ignore[arg-type]


def _document_message(mime: str = "image/jpeg", size: int = 1000) -> Message:
    return Message(
        message_id=5,
        date=datetime.now(UTC),
        chat=Chat(id=77, type="private"),
        document=Document(file_id="doc", file_unique_id="d", mime_type=mime, file_size=size),
    )


SETTINGS = make_settings("sqlite://", MAX_OUTPUT_PIXELS=1000 * 1000)


async def test_assess_message_refuses_an_upscale_too_large_for_the_output() -> None:
    big = FakeBot(_encode(Image.new("RGB", (501, 500)), "PNG"))
    verdict = await assess_message(
        "upscale",
        _document_message(),
        {},
        SETTINGS,
        "ru",
        big,  # type: ignore[arg-type]
    )
    assert isinstance(verdict, Answer) and verdict.key == "bot-upscale-too-big"
    assert verdict.args == {"width": 501, "height": 500}
    fits = FakeBot(_encode(Image.new("RGB", (500, 500)), "PNG"))
    verdict = await assess_message(
        "upscale",
        _document_message(),
        {},
        SETTINGS,
        "ru",
        fits,  # type: ignore[arg-type]
    )
    assert isinstance(verdict, Ready)


@pytest.mark.parametrize(
    ("bot", "key"),
    [
        (FakeBot(b"garbage" * 10), "bot-input-unreadable"),
        (FakeBot(_encode(Image.new("L", (17_000, 2)), "PNG")), "bot-input-too-many-pixels"),
        (FakeBot(b"x", file_size=30 * MB), "bot-input-too-big"),
        (
            FakeBot(b"", get_file_error=TelegramServerError(GetFile(file_id="d"), "oops")),
            "bot-input-download-failed",
        ),
    ],
)
async def test_assess_message_answers_each_problem_in_every_image_mode(
    bot: FakeBot, key: str
) -> None:
    for mode in ("retouch", "upscale", "merge", "face_swap", "edit", "add_text"):
        verdict = await assess_message(
            mode,
            _document_message(),
            {},
            SETTINGS,
            "en",
            bot,  # type: ignore[arg-type]
        )
        assert isinstance(verdict, Answer) and verdict.key == key, mode
        assert verdict.remember is None  # nothing remembered: not a first photo


async def test_nothing_is_fetched_for_a_photo_a_text_or_a_refused_document() -> None:
    bot = FakeBot(b"")
    not_image = _document_message(mime="application/pdf")
    verdict = await assess_message("retouch", not_image, {}, SETTINGS, "ru", bot)  # type: ignore[arg-type]
    assert isinstance(verdict, Answer) and verdict.key == "bot-input-not-image"
    photo = Message(
        message_id=6,
        date=datetime.now(UTC),
        chat=Chat(id=77, type="private"),
        photo=[PhotoSize(file_id="p", file_unique_id="p", width=400, height=300, file_size=900)],
    )
    verdict = await assess_message("upscale", photo, {}, SETTINGS, "ru", bot)  # type: ignore[arg-type]
    assert isinstance(verdict, Ready)
    in_generate = _document_message()
    await assess_message("generate", in_generate, {}, SETTINGS, "ru", bot)  # type: ignore[arg-type]
    assert bot.get_file_calls == 0


async def test_a_failed_download_is_described_without_the_token_in_its_url() -> None:
    """aiohttp's error text carries the file URL, and a Bot API file URL holds the token."""
    from multidict import CIMultiDict, CIMultiDictProxy
    from yarl import URL

    url = URL("https://api.telegram.org/file/bot123456:SECRET-token/documents/file_1.jpg")
    info = aiohttp.RequestInfo(url, "GET", CIMultiDictProxy(CIMultiDict()), url)
    error = aiohttp.ClientResponseError(info, (), status=502, message="Bad Gateway")
    assert "SECRET-token" in repr(error)  # what used to be logged
    with pytest.raises(HeaderUnavailable) as raised:
        await read_image_header(
            FakeBot(b"", get_file_error=error),
            "doc",
            max_bytes=20 * MB,  # type: ignore[arg-type]
        )
    assert "SECRET-token" not in str(raised.value)
    assert "HTTP 502" in str(raised.value)
