"""Found by the Telegram-faults scenario, on the worker's side of the Bot API: a result
whose photo went out but whose lossless document copy was refused (flood control, 5xx)
failed the whole job; RQ's retry then sent the photo a second time (or, after the last
attempt, refunded an operation whose result the user already had). Also guarded here: a
gateway's HTML error page (a 502 from a proxy, aiogram's ``ClientDecodeError``) is retried
like a 5xx (a refund notice was lost to one in the same run; fixed in workers meanwhile)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramRetryAfter
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


async def test_a_refused_document_copy_keeps_the_delivered_photo(emulator) -> None:
    tg, bot = emulator
    await tg.fail_next(100, kind="500", methods=["sendDocument"])
    sent = await delivery.send_result(
        bot, CHAT, result(), caption="готово", document_caption="без сжатия", lossless=True
    )
    photos = [m for m in await tg.user(CHAT).bot_messages() if m.photo]
    assert [m.message_id for m in photos] == [sent["photo_message_id"]]
    assert "document_message_id" not in sent


async def test_a_refused_photo_is_still_a_failed_delivery(emulator) -> None:
    tg, bot = emulator
    await tg.fail_next(100, kind="500", methods=["sendPhoto"])
    with pytest.raises(delivery.JobFailure) as failed:
        await delivery.send_result(
            bot, CHAT, result(), caption="готово", document_caption="без сжатия", lossless=True
        )
    assert failed.value.failure.transient
    assert not [m for m in await tg.user(CHAT).bot_messages() if m.photo or m.document]


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


async def test_the_photo_is_marked_delivered_before_its_document_copy(emulator) -> None:
    """A copy still going when the job's time runs out is given up at ``until``; by then the
    photo was reported delivered (the job writes its marker there), so nothing that comes
    after can refund it."""
    import asyncio

    tg, bot = emulator
    reported: list[dict] = []
    events: list[str] = []
    send_document = bot.send_document

    async def document_sent(*args, **kwargs):  # type: ignore[no-untyped-def]
        events.append("sendDocument")
        return await send_document(*args, **kwargs)

    bot.send_document = document_sent  # type: ignore[method-assign]

    async def on_photo(ref: dict) -> None:
        events.append("delivered")
        reported.append(ref)

    await tg.delay_next(30, methods=["sendDocument"])
    until = asyncio.get_running_loop().time() + 2.0
    sent = await delivery.send_result(
        bot,
        CHAT,
        result(),
        caption="готово",
        document_caption="без сжатия",
        lossless=True,
        until=until,
        on_photo=on_photo,
    )
    assert [r["photo_message_id"] for r in reported] == [sent["photo_message_id"]]
    assert events == ["delivered", "sendDocument"]  # marked before the copy was asked for
    assert "document_message_id" not in sent
    # Not waited for: Telegram (held up for 30 s) has not even taken the copy yet.
    assert not [m for m in await tg.user(CHAT).bot_messages() if m.document]


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
