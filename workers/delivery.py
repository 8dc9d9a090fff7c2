"""Talking to Telegram from a job: inputs by file id, progress, the result, notices.

Calls that matter (downloads, the result, the refund notice) are retried in place by the one
Telegram retry rule (:mod:`tg.retry`) with the worker's :data:`POLICY` — a 429's
``retry_after`` is honoured when it is short — and then raise for RQ's retries. Cosmetic
calls (editing the status message, the chat action, deleting the status message) are tried
once and never fail the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from aiogram import Bot
from aiogram.enums import ChatAction
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
)
from aiogram.types import BufferedInputFile, InlineKeyboardMarkup

from billing.settings import Settings
from imaging._image import MediaResult
from tg.errors import TELEGRAM_ERRORS, Kind, classify, is_transient
from tg.retry import RetryPolicy, retry_call
from workers.failures import JobFailure

log = logging.getLogger(__name__)

T = TypeVar("T")

# Telegram's limits for sendPhoto: larger pictures must go as documents.
PHOTO_MAX_BYTES = 10 * 1024 * 1024
PHOTO_MAX_SIDES_SUM = 10_000
PHOTO_MAX_RATIO = 20
PHOTO_SHOWN_SIDE = 2560  # Telegram keeps a photo at most this large: a bigger one shrinks
DOCUMENT_MAX_BYTES = 50 * 1024 * 1024

ATTEMPTS = 3
BACKOFF = (0.5, 1.5, 4.0)  # the default of TELEGRAM_RETRY_BACKOFF
MAX_RETRY_AFTER = 15.0  # a longer flood wait goes back to RQ (its retry intervals)
FLOOD_BUDGET = 30.0  # seconds of flood-control waits one call may spend
FLOOD_JITTER = 0.5  # seconds added at random to each flood wait
UPLOAD_ROOM = 5.0  # seconds kept for an upload's retry to finish before the job's time ends
FIRST_ACTION_WAIT = 3.0  # seconds the first chat action may still take after the work
CHAT_ACTION_EVERY = 4.5  # Telegram shows an action for about five seconds

# The worker's calls: network errors are retried too (a job's result sent twice is the
# lesser harm than a refund of a result Telegram took; RQ's retry would resend it anyway).
POLICY = RetryPolicy(
    attempts=ATTEMPTS,
    backoff=BACKOFF,
    max_retry_after=MAX_RETRY_AFTER,
    flood_budget=FLOOD_BUDGET,
    flood_jitter=FLOOD_JITTER,
    retry_network=True,
)
COSMETIC_ERRORS = (
    TelegramAPIError,
    ClientDecodeError,
    aiohttp.ClientError,
    asyncio.TimeoutError,
    OSError,
)


async def call(
    make: Callable[[], Awaitable[T]],
    *,
    what: str,
    until: float | None = None,
    room: float = 0.0,
) -> T:
    """``await make()`` under the worker's :data:`POLICY` (with this process's
    TELEGRAM_RETRY_BACKOFF, :func:`configure`): flood waits within ``FLOOD_BUDGET``, 5xx and
    network errors ``ATTEMPTS`` times in all.

    ``until`` (the event loop's clock): no retry is begun whose wait, plus ``room`` seconds
    for the try itself, would end later; the error is raised instead — so an upload is not
    started just before the caller's time runs out, to be cut short in flight.
    """
    return await retry_call(make, _policy, what=what, logger=log, until=until, room=room)


_policy = POLICY


def configure(settings: Settings) -> None:
    """This process's waits between tries: TELEGRAM_RETRY_BACKOFF (tests set them short)."""
    global _policy
    _policy = dataclasses.replace(POLICY, backoff=tuple(settings.TELEGRAM_RETRY_BACKOFF))


async def best_effort(make: Callable[[], Awaitable[Any]], *, what: str) -> bool:
    """One try; a failure is logged, never raised (nothing here is worth failing a job)."""
    try:
        await make()
        return True
    except COSMETIC_ERRORS as exc:
        log.info("%s skipped: %s", what, exc)
        return False


@contextlib.asynccontextmanager
async def chat_action(bot: Bot, chat_id: int) -> AsyncIterator[None]:
    """Show "sending photo…" in the chat until the block ends. After work that succeeded,
    the first one has gone out (or FIRST_ACTION_WAIT passed) even if the work took less
    than a round trip: cancelled in flight, Telegram may or may not have shown it."""
    first_done = asyncio.Event()

    async def loop() -> None:
        while True:
            await best_effort(
                lambda: bot.send_chat_action(chat_id, ChatAction.UPLOAD_PHOTO),
                what="chat action",
            )
            first_done.set()
            await asyncio.sleep(CHAT_ACTION_EVERY)

    task = asyncio.create_task(loop())
    try:
        yield
        # The work is done (on a failure nothing waits: the watchdog's time is short).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(first_done.wait(), FIRST_ACTION_WAIT)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class _Limited(io.BytesIO):
    """A download buffer that refuses to grow past ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def write(self, data: Any) -> int:  # type: ignore[override]
        if self.tell() + len(data) > self.limit:
            raise JobFailure(
                "input-too-large",
                f"file is over {self.limit} bytes",
                limit_mb=self.limit // (1024 * 1024),
            )
        return super().write(data)


async def download(bot: Bot, file_id: str, *, max_bytes: int) -> bytes:
    """The bytes of a Telegram file, fetched through the Bot API (TELEGRAM_API_URL)."""
    try:
        file = await call(lambda: bot.get_file(file_id), what="getFile")
    except TelegramBadRequest as exc:
        raise JobFailure("input-missing", f"getFile refused {file_id!r}: {exc}") from exc
    if file.file_size is not None and file.file_size > max_bytes:
        raise JobFailure(
            "input-too-large",
            f"file of {file.file_size} bytes is over {max_bytes}",
            limit_mb=max_bytes // (1024 * 1024),
        )
    if not file.file_path:
        raise JobFailure("input-missing", f"getFile gave no file_path for {file_id!r}")
    path = file.file_path

    async def fetch() -> bytes:
        buffer = _Limited(max_bytes)  # a fresh one for each try
        await bot.download_file(path, destination=buffer, timeout=60)
        return buffer.getvalue()

    try:
        return await call(fetch, what="download")
    except aiohttp.ClientResponseError as exc:
        if classify(exc) is Kind.REFUSED:
            refused = f"download of {path!r} answered {exc.status}"
            raise JobFailure("input-missing", refused) from exc
        raise


@dataclass(frozen=True)
class Plan:
    photo: bool
    document: bool


def plan_delivery(result: MediaResult, *, lossless: bool) -> Plan:
    """A photo when Telegram takes it as one; a document too when the photo would lose
    quality (Telegram recompresses photos, and shrinks those past ``PHOTO_SHOWN_SIDE``) or
    instead of it when it is over the limits."""
    w, h = result.width, result.height
    fits = (
        len(result.data) <= PHOTO_MAX_BYTES
        and w + h <= PHOTO_MAX_SIDES_SUM
        and max(w, h) <= PHOTO_MAX_RATIO * min(w, h)
    )
    shrunk = max(w, h) > PHOTO_SHOWN_SIDE
    return Plan(photo=fits, document=not fits or lossless or shrunk or result.format == "png")


async def send_result(
    bot: Bot,
    chat_id: int,
    result: MediaResult,
    *,
    caption: str,
    document_caption: str,
    lossless: bool,
    until: float | None = None,
    on_photo: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    reply_markup: InlineKeyboardMarkup | None = None,
) -> dict[str, Any]:
    """Send the result; returns the ids of the messages sent (the operation's result_ref).

    ``reply_markup`` (the plans offer's button) goes on the result itself — the photo, or the
    document when there is no photo — never as a message of its own: each Bot API call is
    capacity (about 30 messages a second for the whole bot).

    ``on_photo(ref)`` runs as soon as the photo is in the chat, before its document copy: the
    result is delivered from then on, whatever happens to the copy. ``until`` (the event
    loop's clock) bounds the waits between tries, and the copy as a whole."""
    plan = plan_delivery(result, lossless=lossless)
    if len(result.data) > DOCUMENT_MAX_BYTES:
        raise JobFailure("undeliverable", f"result of {len(result.data)} bytes is too large")
    sent: dict[str, Any] = {
        "format": result.format,
        "width": result.width,
        "height": result.height,
        "bytes": len(result.data),
    }
    try:
        if plan.photo:
            photo = BufferedInputFile(result.data, filename=result.filename)
            message = await call(
                lambda: bot.send_photo(chat_id, photo, caption=caption, reply_markup=reply_markup),
                what="sendPhoto",
                until=until,
                room=UPLOAD_ROOM,
            )
            sent["photo_message_id"] = message.message_id
            if on_photo is not None:
                await on_photo(dict(sent))
        if plan.document:
            document = BufferedInputFile(result.data, filename=result.filename)
            text = document_caption if plan.photo else caption

            async def send_document() -> None:
                message = await call(
                    lambda: bot.send_document(
                        chat_id,
                        document,
                        caption=text,
                        disable_content_type_detection=True,
                        reply_markup=None if plan.photo else reply_markup,
                    ),
                    what="sendDocument",
                    until=until,
                    room=UPLOAD_ROOM,
                )
                sent["document_message_id"] = message.message_id

            if "photo_message_id" in sent:
                # The photo IS the result and the user has it: failing the job now would
                # make RQ's retry send it again (or refund a delivered result). The lossless
                # copy is a bonus, tried like any other call, never worth that — nor worth
                # the job's time running out in the middle of it.
                try:
                    async with asyncio.timeout_at(until):
                        await send_document()
                except (*TELEGRAM_ERRORS, TimeoutError) as exc:
                    log.error("chat %s: the result's document copy not sent: %r", chat_id, exc)
            else:
                await send_document()
    except TELEGRAM_ERRORS as exc:
        if is_transient(exc):
            raise JobFailure("undeliverable", f"result not sent: {exc}", transient=True) from exc
        # Blocked by the user, chat gone, file refused: another try changes nothing.
        raise JobFailure("undeliverable", f"result refused: {exc}") from exc
    return sent
