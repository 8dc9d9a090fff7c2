"""📎 Файл без сжатия under a result: the lossless file, sent only when asked for.

The worker shows a result as one message (the "queued" message edited into the photo) and
keeps the uncompressed bytes under that message (:mod:`jobqueue.result_files`): each message
sent is Telegram capacity, and most users never want the file. A tap sends it as a reply to
the photo; a later tap re-sends it by Telegram's file id, without an upload.
"""

from __future__ import annotations

import logging

from aiogram import F, Router
from aiogram.types import BufferedInputFile, CallbackQuery, Message
from redis.asyncio import Redis
from redis.exceptions import RedisError

from billing.settings import Settings
from jobqueue import result_files
from texts.i18n import t
from tg.buttons import RESULT_FILE

log = logging.getLogger(__name__)


async def send_result_file(
    query: CallbackQuery, redis: Redis, settings: Settings, lang: str
) -> None:
    """Send the result's lossless file, once per tap; say so when it is no longer kept."""
    gone = t("bot-result-file-gone", lang, hours=_hours(settings.RESULT_FILE_KEEP_SECONDS))
    message = query.message if isinstance(query.message, Message) else None
    if message is None or query.bot is None:
        await query.answer(gone, show_alert=True)
        return
    where = (query.bot.id, message.chat.id, message.message_id)
    try:
        kept = await result_files.load(redis, *where)
        if kept is not None and not await result_files.start_sending(redis, *where):
            await query.answer(t("bot-result-file-sending", lang))
            return
    except RedisError as exc:
        log.warning("result file of message %s not readable: %r", message.message_id, exc)
        kept = None
    if kept is None:
        await query.answer(gone, show_alert=True)
        return
    await query.answer()
    document = kept.file_id or BufferedInputFile(kept.data or b"", filename=kept.filename)
    file_id: str | None = None
    try:
        sent = await message.answer_document(
            document,
            caption=t("worker-document-caption", lang),
            reply_to_message_id=message.message_id,
            disable_content_type_detection=True,
        )
        file_id = sent.document.file_id if sent.document else None
    finally:
        try:
            if file_id:
                await result_files.sent(redis, *where, file_id)
            else:
                await result_files.done_sending(redis, *where)
        except RedisError as exc:  # the lock expires by itself
            log.warning("result file of message %s: state not kept: %r", message.message_id, exc)


def _hours(seconds: int) -> str:
    # A string: Fluent would group the digits of a number.
    return f"{seconds / 3600:g}"


def create_router() -> Router:
    """A fresh router (a dispatcher per test or process: a router has one parent)."""
    router = Router(name="result_file")
    router.callback_query.register(send_result_file, F.data == RESULT_FILE)
    return router
