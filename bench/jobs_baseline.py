"""The unavoidable Telegram part of a job, alone, as a bare RQ job (bench/jobs.py's second
baseline): download the input by file id, send it back as a photo. No database, no status
message, no lock: what is left over in the project's job round trip is its machinery."""

from __future__ import annotations

from aiogram.types import BufferedInputFile

from workers import runtime


async def download_and_send(file_id: str, chat_id: int) -> int:
    bot = runtime.make_job_bot(runtime.settings())
    try:
        file = await bot.get_file(file_id)
        assert file.file_path
        data = (await bot.download_file(file.file_path)).read()  # type: ignore[union-attr]
        message = await bot.send_photo(chat_id, BufferedInputFile(data, "photo.jpg"))
        return message.message_id
    finally:
        await runtime.close_job_bot(bot)
