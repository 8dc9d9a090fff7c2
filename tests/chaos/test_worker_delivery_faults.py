"""Found by the Telegram-faults scenario, on the worker's side of the Bot API. A lossless
document copy sent after the photo once failed the whole job when refused, and RQ's retry
sent the photo again: now the result is the "queued" message edited (a retry edits the same
message) and the copy waits for the user's 📎 tap. Also guarded here: a gateway's HTML error
page (a 502 from a proxy, aiogram's ``ClientDecodeError``) is retried like a 5xx (a refund
notice was lost to one in the same run; fixed in workers meanwhile)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramRetryAfter
from aiogram.types import InlineKeyboardButton
from PIL import Image

from imaging._image import MediaResult
from sandbox._common import ServerHandle
from sandbox.telegram import create_app
from sandbox.telegram_client import TelegramEmulatorClient
from tests.conftest import make_settings
from tg.factory import make_bot
from workers import delivery
from workers.failures import classify

TOKEN = "525252:delivery-tests-token"
CHAT = 5201


@pytest.fixture
async def emulator() -> AsyncIterator[tuple[TelegramEmulatorClient, Bot]]:
    async with ServerHandle(create_app()) as server:
        settings = make_settings(
            "sqlite:///unused.db", TELEGRAM_API_URL=server.url, BOT_TOKEN=TOKEN
        )
        bot = make_bot(settings)
        async with TelegramEmulatorClient(server.url, token=TOKEN) as tg:
            await tg.user(CHAT).send_text("/start")
            try:
                yield tg, bot
            finally:
                await bot.session.close()


def result() -> MediaResult:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, "JPEG")
    return MediaResult(
        data=out.getvalue(), format="jpeg", width=64, height=48, op="upscale", params={}
    )


FILE_BUTTON = InlineKeyboardButton(text="📎 без сжатия", callback_data="result:file")


async def test_a_deleted_status_message_gets_the_result_as_a_new_photo(emulator) -> None:
    """The user deleted "queued": the edit is refused for good, so the result comes as a
    message of its own, and its 📎 once the file is kept under that message."""
    tg, bot = emulator
    status = await bot.send_message(CHAT, "в очереди")
    await bot.delete_message(CHAT, status.message_id)
    kept: list[int] = []

    async def keep(message_id: int) -> bool:
        kept.append(message_id)
        return True

    sent = await delivery.send_result(
        bot,
        CHAT,
        result(),
        caption="готово",
        lossless=True,
        status_message_id=status.message_id,
        file_button=FILE_BUTTON,
        keep_file=keep,
    )
    [photo] = [m for m in await tg.user(CHAT).bot_messages() if m.photo]
    assert sent["photo_message_id"] == photo.message_id != status.message_id
    assert kept == [status.message_id, photo.message_id] and sent["file_button"] is True
    assert photo.button_texts == ["📎 без сжатия"] and photo.text == "готово"


async def test_a_refused_result_is_still_a_failed_delivery(emulator) -> None:
    tg, bot = emulator
    status = await bot.send_message(CHAT, "в очереди")
    await tg.fail_next(100, kind="500", methods=["editMessageMedia", "sendPhoto"])
    with pytest.raises(delivery.JobFailure) as failed:
        await delivery.send_result(
            bot,
            CHAT,
            result(),
            caption="готово",
            lossless=True,
            status_message_id=status.message_id,
        )
    assert failed.value.failure.transient
    assert not [m for m in await tg.user(CHAT).bot_messages() if m.photo or m.document]
    [still] = await tg.user(CHAT).bot_messages()
    assert still.text == "в очереди"  # left as it was, for the retry to edit


async def test_a_gateway_error_page_is_retried(emulator) -> None:
    tg, bot = emulator
    await tg.fail_next(2, kind="502", methods=["sendMessage"])
    message = await delivery.call(
        lambda: bot.send_message(CHAT, "деньги вернули"), what="refund notice"
    )
    texts = [m.text for m in await tg.user(CHAT).bot_messages()]
    assert texts.count("деньги вернули") == 1 and message.text == "деньги вернули"


async def test_a_gateway_error_page_is_a_transient_telegram_failure(emulator) -> None:
    tg, bot = emulator
    await tg.fail_next(10, kind="502", methods=["sendMessage"])
    with pytest.raises(Exception) as raised:
        await delivery.call(lambda: bot.send_message(CHAT, "x"), what="notice")
    assert isinstance(raised.value, delivery.COSMETIC_ERRORS)
    failure = classify(raised.value)
    assert failure.reason == "telegram" and failure.transient


async def test_the_file_is_kept_before_the_result_shows_and_marked_after(emulator) -> None:
    """📎 must work from the moment the result shows: the file is kept first; the result is
    reported delivered (the job writes its marker then) once Telegram took the edit."""
    tg, bot = emulator
    events: list[str] = []
    edit_media = bot.edit_message_media

    async def edited(*args, **kwargs):  # type: ignore[no-untyped-def]
        events.append("edit")
        return await edit_media(*args, **kwargs)

    bot.edit_message_media = edited  # type: ignore[method-assign]

    async def keep(message_id: int) -> bool:
        events.append("kept")
        return True

    async def on_photo(ref: dict) -> None:
        events.append("delivered")

    status = await bot.send_message(CHAT, "в очереди")
    sent = await delivery.send_result(
        bot,
        CHAT,
        result(),
        caption="готово",
        lossless=True,
        status_message_id=status.message_id,
        on_photo=on_photo,
        file_button=FILE_BUTTON,
        keep_file=keep,
    )
    assert events == ["kept", "edit", "delivered"]
    assert sent["photo_message_id"] == status.message_id and sent["file_button"] is True
    [photo] = await tg.user(CHAT).bot_messages()
    assert photo.photo and photo.button_texts == ["📎 без сжатия"]


async def test_no_flood_wait_is_begun_past_until(emulator, monkeypatch) -> None:
    import asyncio

    tg, bot = emulator
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(delivery.asyncio, "sleep", sleep)
    await tg.fail_next(1, kind="429", retry_after=5, methods=["sendMessage"])
    until = asyncio.get_running_loop().time() + 2.0
    with pytest.raises(TelegramRetryAfter):
        await delivery.call(lambda: bot.send_message(CHAT, "x"), what="notice", until=until)
    assert [w for w in waits if w > 0] == []  # raised at once: 5 s would end past ``until``
    # Without ``until`` the same answer is waited out.
    await tg.fail_next(1, kind="429", retry_after=5, methods=["sendMessage"])
    await delivery.call(lambda: bot.send_message(CHAT, "x"), what="notice")
    assert [w for w in waits if w >= 5] and not [w for w in waits if 0 < w < 5]
    # A wait that fits, but not with the room an upload's try needs, is not begun either.
    waits.clear()
    await tg.fail_next(1, kind="429", retry_after=1, methods=["sendMessage"])
    until = asyncio.get_running_loop().time() + 3.0
    with pytest.raises(TelegramRetryAfter):
        await delivery.call(
            lambda: bot.send_message(CHAT, "x"), what="upload", until=until, room=5.0
        )
    assert [w for w in waits if w > 0] == []


async def test_the_refund_notice_edits_queued_and_falls_back_to_a_message(emulator) -> None:
    """The refund notice replaces "queued" (no new message, nothing deleted); when that
    message is gone (deleted by the user) or is a picture by now, a message of its own."""
    from workers.refunds import tell_refund

    tg, bot = emulator
    user = tg.user(CHAT)
    status = await bot.send_message(CHAT, "в очереди")
    await tell_refund(bot, CHAT, status.message_id, "❌ не вышло, деньги вернули")
    [shown] = await user.bot_messages()
    assert shown.message_id == status.message_id and shown.text == "❌ не вышло, деньги вернули"

    gone = await bot.send_message(CHAT, "в очереди")
    await bot.delete_message(CHAT, gone.message_id)
    await tell_refund(bot, CHAT, gone.message_id, "❌ второй раз")
    picture = await delivery.send_result(bot, CHAT, result(), caption="готово", lossless=False)
    await tell_refund(bot, CHAT, picture["photo_message_id"], "❌ третий раз")
    texts = [m.text for m in await user.bot_messages()]
    assert texts == ["❌ не вышло, деньги вернули", "❌ второй раз", "готово", "❌ третий раз"]
    [photo] = [m for m in await user.bot_messages() if m.photo]
    assert photo.text == "готово"  # the picture stays; the notice came on its own
