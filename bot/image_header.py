"""The header of an image sent as a document, read by the bot before any charge.

A Telegram ``Document`` carries no width or height, and its name and MIME type are only
what the sender's app claims. So before a mode charges for an image document, the bot
fetches the file through the Bot API (``getFile``, then the file URL — the same path the
worker uses) and opens it with Pillow, which reads the header only
(``imaging.header.probe_image``). The download stops as soon as the header is readable —
for a JPEG or a PNG that is the first chunk — so the handler stays fast; the whole file is
read only for formats whose header is not at the start, and never more than ``max_bytes``.

Photos need none of this: Telegram gives their size in the update.
"""

from __future__ import annotations

import asyncio
import io
import logging

import aiohttp
from aiogram import Bot
from aiogram.exceptions import ClientDecodeError, TelegramAPIError, TelegramBadRequest

from imaging.errors import InvalidImage
from imaging.header import ImageInfo, probe_image

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 20
CHUNK_BYTES = 64 * 1024
FIRST_PROBE_BYTES = 64 * 1024
"""Try the header once this much has arrived, then each time the buffer has grown 4×."""

NETWORK_ERRORS = (
    TelegramAPIError,  # 5xx, 429, network errors of Bot API calls
    ClientDecodeError,  # an HTML error page instead of JSON
    aiohttp.ClientError,  # the file download itself (including a 5xx or 404 answer)
    asyncio.TimeoutError,
    OSError,
)


class FileTooBig(Exception):
    """The file is over the size limit (Telegram's getFile says so, or it kept coming)."""


class HeaderUnavailable(Exception):
    """Telegram or the network failed: nothing is known about the file; try again later."""


class _Capped(io.BytesIO):
    """A download buffer (local Bot API server mode) that refuses to grow past ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self.tell() + len(data) > self.limit:
            raise FileTooBig(f"file is over {self.limit} bytes")
        return super().write(data)


def _probe_partial(data: bytes) -> ImageInfo | None:
    """The header, if the bytes so far hold it; None when more bytes may still make it
    readable. ImageTooLarge (the header names too many pixels) is final: it propagates."""
    try:
        return probe_image(data)
    except InvalidImage:
        return None


async def read_image_header(bot: Bot, file_id: str, *, max_bytes: int) -> ImageInfo:
    """The displayed size and format of the image ``file_id``, within TIMEOUT_SECONDS.

    Raises InvalidImage (not an image Pillow reads, or a format we refuse) and
    ImageTooLarge (over the input pixel limits) like :func:`imaging.header.probe_image`,
    :class:`FileTooBig` and :class:`HeaderUnavailable` (Telegram or the network failed).
    """
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            return await _read(bot, file_id, max_bytes=max_bytes)
    except TelegramBadRequest as exc:
        if "too big" in exc.message.lower():
            raise FileTooBig(exc.message) from exc
        raise HeaderUnavailable(f"getFile refused {file_id!r}: {exc.message}") from exc
    except NETWORK_ERRORS as exc:
        # Never the exception's text: aiohttp's carries the file URL, which holds the token.
        raise HeaderUnavailable(f"reading {file_id!r} failed: {_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    """The kind of a network failure, without any URL (a file URL contains the bot token)."""
    status = getattr(exc, "status", None)
    return f"{type(exc).__name__}" + (f" (HTTP {status})" if isinstance(status, int) else "")


async def _read(bot: Bot, file_id: str, *, max_bytes: int) -> ImageInfo:
    file = await bot.get_file(file_id)
    if file.file_size is not None and file.file_size > max_bytes:
        raise FileTooBig(f"file of {file.file_size} bytes is over {max_bytes}")
    if not file.file_path:
        raise HeaderUnavailable(f"getFile gave no file_path for {file_id!r}")
    if bot.session.api.is_local:
        buffer = _Capped(max_bytes)
        await bot.download_file(file.file_path, destination=buffer, timeout=TIMEOUT_SECONDS)
        return probe_image(buffer.getvalue())
    stream = bot.session.stream_content(
        url=bot.session.api.file_url(bot.token, file.file_path),
        timeout=TIMEOUT_SECONDS,
        chunk_size=CHUNK_BYTES,
        raise_for_status=True,
    )
    buffer = bytearray()
    next_probe = FIRST_PROBE_BYTES
    try:
        async for chunk in stream:
            buffer += chunk
            if len(buffer) > max_bytes:
                raise FileTooBig(f"file is over {max_bytes} bytes")
            if len(buffer) >= next_probe:
                info = _probe_partial(bytes(buffer))
                if info is not None:
                    return info
                next_probe = len(buffer) * 4
    finally:
        await stream.aclose()  # stop the download: the rest of the file is not needed
    # The whole file is here: whatever Pillow says now is final.
    return probe_image(bytes(buffer))
