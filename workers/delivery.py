"""Talking to Telegram from a job: inputs by file id, progress, the result, notices.

Calls that matter (downloads, the result, the refund notice) are retried in place by the one
Telegram retry rule (:mod:`tg.retry`) with the worker's :data:`POLICY` — a 429's
``retry_after`` is honoured when it is short — and then raise for RQ's retries. Cosmetic
calls (the "processing" edit, the chat action) are tried once and never fail the job. The
result itself replaces the "queued" message (:func:`send_result`): one message per operation.
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
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    Message,
)

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
    photo: bool  # the result goes as a photo (else as a document, the only message)
    file_button: bool  # "📎 Файл без сжатия" under the photo: the lossless copy on a tap


def plan_delivery(result: MediaResult, *, lossless: bool) -> Plan:
    """A photo when Telegram takes it as one, with the button for the lossless file when the
    photo would lose quality (Telegram recompresses photos, and shrinks those past
    ``PHOTO_SHOWN_SIDE``); a document instead when it is over the photo limits."""
    w, h = result.width, result.height
    fits = (
        len(result.data) <= PHOTO_MAX_BYTES
        and w + h <= PHOTO_MAX_SIDES_SUM
        and max(w, h) <= PHOTO_MAX_RATIO * min(w, h)
    )
    shrunk = max(w, h) > PHOTO_SHOWN_SIDE
    return Plan(photo=fits, file_button=fits and (lossless or shrunk or result.format == "png"))


def result_keyboard(
    file_button: InlineKeyboardButton | None, reply_markup: InlineKeyboardMarkup | None
) -> InlineKeyboardMarkup | None:
    rows = [[file_button]] if file_button is not None else []
    rows += reply_markup.inline_keyboard if reply_markup is not None else []
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


async def send_result(
    bot: Bot,
    chat_id: int,
    result: MediaResult,
    *,
    caption: str,
    lossless: bool,
    status_message_id: int | None = None,
    until: float | None = None,
    on_photo: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    reply_markup: InlineKeyboardMarkup | None = None,
    file_button: InlineKeyboardButton | None = None,
    keep_file: Callable[[int], Awaitable[bool]] | None = None,
) -> dict[str, Any]:
    """Show the result as ONE message; returns its id (the operation's result_ref).

    Every Bot API message sent or edited is capacity (about 30 a second for the whole bot):
    the "queued" message (``status_message_id``) becomes the result by ``editMessageMedia``
    (Bot API 10.x replaces a text message with media), so an operation costs the "queued"
    message, the "processing" edit and this edit. The lossless copy is not sent: the photo
    carries ``file_button`` and the bot sends the file the worker kept (``keep_file(message
    id)``, before the result shows) on a tap. A result over the photo limits is the document
    itself. The status message gone (deleted by the user) or refused: a new message instead.
    An edit tried again edits the same message: a retry never shows the result twice.

    ``reply_markup`` (the plans offer's button) goes on the result too. ``on_photo(ref)``
    runs as soon as the result is in the chat. ``until`` (the event loop's clock) bounds the
    waits between tries."""
    plan = plan_delivery(result, lossless=lossless)
    if len(result.data) > DOCUMENT_MAX_BYTES:
        raise JobFailure("undeliverable", f"result of {len(result.data)} bytes is too large")
    sent: dict[str, Any] = {
        "format": result.format,
        "width": result.width,
        "height": result.height,
        "bytes": len(result.data),
    }
    ref_name = "photo_message_id" if plan.photo else "document_message_id"
    offer_file = plan.file_button and file_button is not None and keep_file is not None

    def media() -> InputMediaPhoto | InputMediaDocument:
        upload = BufferedInputFile(result.data, filename=result.filename)
        if plan.photo:
            return InputMediaPhoto(media=upload, caption=caption)
        return InputMediaDocument(
            media=upload, caption=caption, disable_content_type_detection=True
        )

    async def kept(message_id: int) -> bool:
        return offer_file and keep_file is not None and await keep_file(message_id)

    try:
        message_id: int | None = None
        if status_message_id is not None:
            with_file = await kept(status_message_id)
            markup = result_keyboard(file_button if with_file else None, reply_markup)
            try:
                edited = await call(
                    lambda: bot.edit_message_media(
                        media(),
                        chat_id=chat_id,
                        message_id=status_message_id,
                        reply_markup=markup,
                    ),
                    what="editMessageMedia",
                    until=until,
                    room=UPLOAD_ROOM,
                )
                message_id = status_message_id
                sent["file_button"] = with_file
                _keep_file_id(sent, edited)
            except TelegramBadRequest as exc:
                if "message is not modified" in str(exc):
                    # A retry after a lost answer met the result already shown: delivered.
                    message_id = status_message_id
                    sent["file_button"] = with_file
                else:
                    # Deleted by the user, or a server that cannot edit it: a message of its
                    # own, and the status message goes (if it is still there).
                    log.info("chat %s: status message not edited: %s", chat_id, exc)
                    await best_effort(
                        lambda: bot.delete_message(chat_id, status_message_id),
                        what="delete status message",
                    )
        if message_id is None:
            message = await _send_new(bot, chat_id, plan, result, caption, reply_markup, until)
            message_id = message.message_id
            _keep_file_id(sent, message)
            sent["file_button"] = False
            if await kept(message_id):
                # The button goes on once the file is kept under this message (cosmetic).
                markup = result_keyboard(file_button, reply_markup)
                sent["file_button"] = await best_effort(
                    lambda: bot.edit_message_reply_markup(
                        chat_id=chat_id, message_id=message_id, reply_markup=markup
                    ),
                    what="file button",
                )
        sent[ref_name] = message_id
        if on_photo is not None:
            await on_photo(dict(sent))
    except TELEGRAM_ERRORS as exc:
        if is_transient(exc):
            raise JobFailure("undeliverable", f"result not sent: {exc}", transient=True) from exc
        # Blocked by the user, chat gone, file refused: another try changes nothing.
        raise JobFailure("undeliverable", f"result refused: {exc}") from exc
    return sent


def _keep_file_id(sent: dict[str, Any], message: object) -> None:
    """The result's file id in its ref: the bot can send the result again by it (a link to
    the operation from the Mini App, when the result's message is gone), without an upload."""
    if not isinstance(message, Message):
        return
    if message.photo:
        sent["file_id"] = message.photo[-1].file_id
    elif message.document is not None:
        sent["file_id"] = message.document.file_id


async def _send_new(
    bot: Bot,
    chat_id: int,
    plan: Plan,
    result: MediaResult,
    caption: str,
    reply_markup: InlineKeyboardMarkup | None,
    until: float | None,
) -> Message:
    upload = BufferedInputFile(result.data, filename=result.filename)
    if plan.photo:
        message = await call(
            lambda: bot.send_photo(chat_id, upload, caption=caption, reply_markup=reply_markup),
            what="sendPhoto",
            until=until,
            room=UPLOAD_ROOM,
        )
    else:
        message = await call(
            lambda: bot.send_document(
                chat_id,
                upload,
                caption=caption,
                disable_content_type_detection=True,
                reply_markup=reply_markup,
            ),
            what="sendDocument",
            until=until,
            room=UPLOAD_ROOM,
        )
    return message
