"""The emulator in-process (sandbox.telegram_inprocess) answers as it does over HTTP: the
bot tests feed their dispatcher through it, so each behaviour here runs on both transports."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramBadRequest,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import SendMessage
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiohttp import web

from sandbox._common import ServerHandle
from sandbox.telegram import EMU_KEY, TelegramEmulator
from sandbox.telegram import create_app as create_telegram_app
from sandbox.telegram_client import EmulatorError, TelegramEmulatorClient
from sandbox.telegram_inprocess import EmulatorSession, FedDispatcher, LocalTelegramClient

TOKEN = "123456789:AAH-in_process_token_for_tests_012"
KB = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text="Помощь", callback_data="help")]]
)


@dataclass
class Side:
    bot: Bot
    tg: TelegramEmulatorClient
    emulator: TelegramEmulator


@pytest.fixture
async def emulator_app() -> AsyncIterator[web.Application]:
    app = create_telegram_app()
    yield app
    await app[EMU_KEY].shutdown()


@pytest.fixture(params=["http", "in-process"])
async def side(
    request: pytest.FixtureRequest, emulator_app: web.Application
) -> AsyncIterator[Side]:
    emulator = emulator_app[EMU_KEY]
    if request.param == "in-process":
        bot = Bot(TOKEN, session=EmulatorSession(emulator))
        yield Side(bot, LocalTelegramClient(emulator, token=TOKEN), emulator)
        return
    async with ServerHandle(emulator_app) as server:
        bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(server.url)))
        async with TelegramEmulatorClient(server.url, token=TOKEN) as tg:
            yield Side(bot, tg, emulator)
        await bot.session.close()


def _jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (1000, 600), (30, 90, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


async def test_messages_edits_callbacks_and_files_answer_alike(side: Side) -> None:
    user = side.tg.user(1001, first_name="Аня")
    photo = _jpeg()
    sent = await user.send_photo(photo, caption="вот")
    assert len(sent.photo) == 4  # 90, 320, 800 and the original

    message = await side.bot.send_message(
        user.chat_id, "<b>Меню</b>", reply_markup=KB, parse_mode="HTML"
    )
    assert message.text == "Меню" and message.reply_markup is not None
    assert [b.callback_data for b in message.reply_markup.inline_keyboard[0]] == ["help"]
    seen = await user.wait_for_text("Меню")
    assert seen.button_texts == ["Помощь"]
    assert seen.entities == [{"type": "bold", "offset": 0, "length": 4}]
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await side.bot.edit_message_text(
            "<b>Меню</b>",
            chat_id=user.chat_id,
            message_id=message.message_id,
            reply_markup=KB,
            parse_mode="HTML",
        )

    query = await user.press(seen, text="Помощь")
    assert await side.bot.answer_callback_query(query.id, text="ок") is True
    assert (await user.wait_for_answer(query))["text"] == "ок"
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await side.bot.answer_callback_query(query.id)

    file = await side.bot.get_file(sent.file_id)
    downloaded = await side.bot.download(file)
    assert downloaded is not None
    assert downloaded.read() == await user.download(sent.file_id) == photo
    with pytest.raises(EmulatorError) as refused:
        await user.press(seen, text="Нет такой")
    assert refused.value.status == 404


async def test_faults_raise_what_aiogram_raises_over_http(side: Side) -> None:
    user = side.tg.user(1002)
    sent = await user.send_photo(_jpeg())
    await side.tg.fail_next(1, kind="429", retry_after=3)
    with pytest.raises(TelegramRetryAfter) as flood:
        await side.bot.send_message(user.chat_id, "x")
    assert flood.value.retry_after == 3
    await side.tg.fail_next(1, kind="500", methods=["getFile"])
    with pytest.raises(TelegramServerError):
        await side.bot.get_file(sent.file_id)
    await side.tg.fail_next(1, kind="502")
    with pytest.raises(ClientDecodeError):
        await side.bot.send_message(user.chat_id, "x")
    await side.tg.fail_next(1, kind="disconnect")
    with pytest.raises(TelegramNetworkError):
        await side.bot.send_message(user.chat_id, "x")
    file = await side.bot.get_file(sent.file_id)
    await side.tg.fail_next(1, kind="500", methods=["file"])
    with pytest.raises(aiohttp.ClientResponseError) as failed:
        await side.bot.download(file)
    assert failed.value.status == 500
    assert (await side.bot.download(file)) is not None  # the fault was used up
    await side.bot.send_message(user.chat_id, "x")
    calls = await side.tg.calls("sendMessage")
    assert [c["ok"] for c in calls] == [True]  # the faults answered before the emulator


async def test_the_session_records_each_request_with_its_answer(
    emulator_app: web.Application,
) -> None:
    emulator = emulator_app[EMU_KEY]
    session = EmulatorSession(emulator)
    bot = Bot(TOKEN, session=session)
    user = LocalTelegramClient(emulator, token=TOKEN).user(1003)
    await user.send_text("/start")
    await bot.send_message(user.chat_id, "привет")
    with pytest.raises(TelegramBadRequest):
        await bot.send_message(999, "никому")
    first, second = session.sent("sendMessage")
    assert isinstance(first.method, SendMessage) and first.method.text == "привет"
    assert isinstance(first.result, Message) and first.result.text == "привет"
    assert isinstance(second.error, TelegramBadRequest) and second.result is None
    assert session.sent() == [first, second]


async def test_a_fed_dispatcher_gets_kept_updates_first_and_leaves_later_ones(
    emulator_app: web.Application,
) -> None:
    emulator = emulator_app[EMU_KEY]
    bot = Bot(TOKEN, session=EmulatorSession(emulator))
    tg = LocalTelegramClient(emulator, token=TOKEN)
    user = tg.user(1004)
    dispatcher = Dispatcher()
    seen: list[str] = []

    @dispatcher.message(F.text)
    async def echo(message: Message) -> SendMessage:
        seen.append(message.text or "")
        return message.answer(f"эхо: {message.text}")  # called as polling calls it

    await user.send_text("раньше")  # before any dispatcher: kept
    feed = FedDispatcher(dispatcher, bot, emulator).start()
    await user.wait_for_text("эхо: раньше", since=0)
    await user.send_text("сейчас")
    await user.wait_for_text("эхо: сейчас")
    await feed.stop()
    await user.send_text("потом")  # no dispatcher: kept for the next one
    await asyncio.sleep(0)
    assert seen == ["раньше", "сейчас"]
    assert [u["message"]["text"] for u in (await tg.bot_info())["pending_updates"]] == ["потом"]
    second = FedDispatcher(dispatcher, bot, emulator).start()
    await user.wait_for_text("эхо: потом")
    await second.stop()
    assert seen == ["раньше", "сейчас", "потом"] and feed.errors == second.errors == []
