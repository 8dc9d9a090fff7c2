"""The unavoidable Telegram part of a job, alone, as bare RQ jobs (bench/jobs.py's baselines).

``download_and_send``: download the input by file id, send it back as a photo.
``with_progress``: every Telegram call the project's job makes for a result, with the same
overlap — "обрабатываю…" in the status message, the chat action and the download at once,
the photo with a caption, then the status message deleted.

No database, no lock, no delivered marker: what is left over in the project's job round
trip is its own machinery.
"""

from __future__ import annotations

import asyncio

from aiogram.enums import ChatAction
from aiogram.types import BufferedInputFile

from workers import runtime


async def _fetch(bot, file_id: str) -> bytes:  # noqa: ANN001
    file = await bot.get_file(file_id)
    assert file.file_path
    return (await bot.download_file(file.file_path)).read()  # type: ignore[union-attr]


async def download_and_send(file_id: str, chat_id: int) -> int:
    bot = runtime.make_job_bot(runtime.settings())
    try:
        data = await _fetch(bot, file_id)
        message = await bot.send_photo(chat_id, BufferedInputFile(data, "photo.jpg"))
        return message.message_id
    finally:
        await runtime.close_job_bot(bot)


async def with_progress(file_id: str, chat_id: int, status_message_id: int, caption: str) -> int:
    bot = runtime.make_job_bot(runtime.settings())
    try:
        _, _, data = await asyncio.gather(
            bot.edit_message_text("⚙️ Обрабатываю…", chat_id=chat_id, message_id=status_message_id),
            bot.send_chat_action(chat_id, ChatAction.UPLOAD_PHOTO),
            _fetch(bot, file_id),
        )
        message = await bot.send_photo(
            chat_id, BufferedInputFile(data, "photo.jpg"), caption=caption
        )
        await bot.delete_message(chat_id, status_message_id)
        return message.message_id
    finally:
        await runtime.close_job_bot(bot)
