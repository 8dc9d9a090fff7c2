"""The Telegram emulator against aiogram's real Bot / AiohttpSession / Dispatcher."""

from __future__ import annotations

import asyncio
import io
import json

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import GetUpdates
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)
from PIL import Image

from sandbox.telegram_client import EmulatorError
from tests.conftest import close_bot

KB = InlineKeyboardMarkup(
    inline_keyboard=[
        [
            InlineKeyboardButton(text="💰 Пополнить", callback_data="topup"),
            InlineKeyboardButton(text="Помощь", callback_data="help"),
        ],
        [InlineKeyboardButton(text="Сайт", url="https://example.org")],
    ]
)


async def test_get_me_reports_the_bot_of_the_token(bot: Bot, bot_token: str) -> None:
    me = await bot.get_me()
    assert me.id == int(bot_token.split(":")[0])
    assert me.is_bot is True
    assert me.username and me.username.endswith("bot")


async def test_invalid_token_and_unknown_method_answer_like_telegram(tg_server) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{tg_server.url}/botnot-a-token/getMe") as resp:
            assert resp.status == 401
            assert await resp.json() == {
                "ok": False,
                "error_code": 401,
                "description": "Unauthorized",
            }
        async with http.post(f"{tg_server.url}/bot1:abc/noSuchMethod") as resp:
            assert resp.status == 404
            assert await resp.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found: method not found",
            }
        # method names are case-insensitive, GET with a query string works too
        async with http.get(f"{tg_server.url}/bot1:abc/GETME") as resp:
            body = await resp.json()
            assert body["ok"] is True and body["result"]["id"] == 1


async def test_send_message_with_inline_keyboard_and_html(bot: Bot, tg) -> None:
    user = tg.user(1001, first_name="Аня", language="ru")
    await user.send_text("/start")
    html_bot = Bot(bot.token, session=bot.session, default=DefaultBotProperties(parse_mode="HTML"))
    sent = await html_bot.send_message(1001, "<b>Баланс:</b> 100 ₽", reply_markup=KB)
    assert sent.text == "Баланс: 100 ₽"
    assert sent.entities and sent.entities[0].type == "bold"
    assert (sent.entities[0].offset, sent.entities[0].length) == (0, 7)
    assert sent.reply_markup.model_dump() == KB.model_dump()
    assert sent.from_user and sent.from_user.is_bot
    assert sent.chat.id == 1001 and sent.chat.type == "private"

    [start, reply] = await user.messages()
    assert start.text == "/start" and not start.from_bot
    assert start.entities == [{"offset": 0, "length": 6, "type": "bot_command"}]
    assert reply.from_bot and reply.message_id == sent.message_id == start.message_id + 1
    assert reply.raw_text == "<b>Баланс:</b> 100 ₽"
    assert reply.button_texts == ["💰 Пополнить", "Помощь", "Сайт"]
    assert reply.button("Пополнить").callback_data == "topup"

    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await html_bot.send_message(1001, "<blink>no</blink>")
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(999_999, "hello")
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(1001, "   ")


async def test_markdown_v2_requires_escaping(bot: Bot, tg) -> None:
    await tg.user(5).send_text("hi")
    with pytest.raises(TelegramBadRequest, match="reserved"):
        await bot.send_message(5, "Цена: 100.50 ₽", parse_mode="MarkdownV2")
    ok = await bot.send_message(5, "*Цена:* 100\\.50 ₽", parse_mode="MarkdownV2")
    assert ok.text == "Цена: 100.50 ₽"
    assert ok.entities and ok.entities[0].type == "bold"


async def test_edit_and_delete_messages(bot: Bot, tg) -> None:
    user = tg.user(1002)
    await user.send_text("hi")
    sent = await bot.send_message(1002, "В очереди…", reply_markup=KB)

    edited = await bot.edit_message_text(
        "Готово", chat_id=1002, message_id=sent.message_id, reply_markup=KB
    )
    assert isinstance(edited, Message)
    assert edited.text == "Готово" and edited.edit_date
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "Готово", chat_id=1002, message_id=sent.message_id, reply_markup=KB
        )
    # editing without reply_markup removes the inline keyboard, as on Telegram
    await bot.edit_message_reply_markup(chat_id=1002, message_id=sent.message_id)
    [_, msg] = await user.messages()
    assert msg.text == "Готово" and msg.buttons == [] and msg.edited
    assert [e["text"] for e in msg.raw["edits"]] == ["В очереди…", "Готово"]

    with pytest.raises(TelegramBadRequest, match="message can't be edited"):
        await bot.edit_message_text("x", chat_id=1002, message_id=1)
    with pytest.raises(TelegramBadRequest, match="there is no caption"):
        await bot.edit_message_caption(chat_id=1002, message_id=sent.message_id, caption="x")

    assert await bot.delete_message(1002, sent.message_id) is True
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(1002, sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("late", chat_id=1002, message_id=sent.message_id)
    messages = await user.messages()
    assert messages[1].deleted is True
    assert [m.message_id for m in await user.messages(include_deleted=False)] == [1]


async def test_send_photo_sizes_get_file_and_download(bot: Bot, tg, make_image) -> None:
    user = tg.user(1003)
    await user.send_text("hi")
    png = make_image(1600, 1200, "blue", "PNG")
    sent = await bot.send_photo(1003, BufferedInputFile(png, "result.png"), caption="Готово ✨")
    assert sent.caption == "Готово ✨"
    dims = [(p.width, p.height) for p in sent.photo]
    assert dims == [(90, 68), (320, 240), (800, 600), (1280, 960), (1600, 1200)]
    assert len({p.file_id for p in sent.photo}) == 5

    largest = sent.photo[-1]
    file = await bot.get_file(largest.file_id)
    assert file.file_path and file.file_size == largest.file_size
    downloaded = await bot.download_file(file.file_path)
    data = downloaded.read()
    with Image.open(io.BytesIO(data)) as img:  # Telegram re-encodes photos to JPEG
        assert (img.format, img.size) == ("JPEG", (1600, 1200))
    assert await user.download(largest.file_id) == data

    [_, msg] = await user.messages()
    assert msg.photo[-1]["file_id"] == largest.file_id and msg.text == "Готово ✨"

    again = await bot.send_photo(1003, largest.file_id)  # re-send by file_id
    assert [p.file_id for p in again.photo] == [p.file_id for p in sent.photo]
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(1003, BufferedInputFile(b"not an image", "x.jpg"))
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(1003, "AgACunknown")


async def test_send_document_keeps_bytes_name_and_mime(bot: Bot, tg, make_image) -> None:
    user = tg.user(1004)
    await user.send_text("hi")
    png = make_image(300, 200, "green", "PNG")
    sent = await bot.send_document(1004, BufferedInputFile(png, "result.png"))
    doc = sent.document
    assert doc is not None
    assert (doc.file_name, doc.mime_type, doc.file_size) == ("result.png", "image/png", len(png))
    file = await bot.get_file(doc.file_id)
    assert (await bot.download_file(file.file_path)).read() == png
    msg = await user.wait_for_photo()
    assert await msg.download() == png
    with pytest.raises(TelegramBadRequest, match="type of file mismatch"):
        await bot.send_photo(1004, doc.file_id)


async def test_edit_message_media_turns_a_text_into_a_photo_then_a_document(
    bot: Bot, tg, make_image
) -> None:
    """Bot API 10.x: a text message may be replaced with media; the new media's caption and
    keyboard replace the old ones; the same media again is "not modified"."""
    user = tg.user(1010)
    await user.send_text("hi")
    queued = await bot.send_message(1010, "⏳ В очереди", reply_markup=KB)
    png = make_image(400, 300, "red", "PNG")
    photo = await bot.edit_message_media(
        InputMediaPhoto(media=BufferedInputFile(png, "r.png"), caption="Готово"),
        chat_id=1010,
        message_id=queued.message_id,
    )
    assert isinstance(photo, Message) and photo.message_id == queued.message_id
    assert photo.photo and photo.caption == "Готово" and photo.text is None
    assert photo.reply_markup is None and photo.edit_date
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_media(
            InputMediaPhoto(media=photo.photo[-1].file_id, caption="Готово"),
            chat_id=1010,
            message_id=queued.message_id,
        )
    doc = await bot.edit_message_media(
        InputMediaDocument(media=BufferedInputFile(png, "r.png"), caption="Файл"),
        chat_id=1010,
        message_id=queued.message_id,
        reply_markup=KB,
    )
    assert isinstance(doc, Message) and doc.document and not doc.photo
    assert doc.caption == "Файл" and doc.reply_markup is not None
    assert doc.reply_markup.inline_keyboard[0][0].callback_data == "topup"
    assert await user.download(doc.document.file_id) == png
    [_, msg] = await user.messages()
    assert [("text" in e, "photo" in e) for e in msg.raw["edits"]] == [
        (True, False),
        (False, True),
    ]
    assert msg.edited and not msg.deleted

    with pytest.raises(TelegramBadRequest, match="message can't be edited"):
        await bot.edit_message_media(
            InputMediaPhoto(media=photo.photo[-1].file_id), chat_id=1010, message_id=1
        )
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.edit_message_media(
            InputMediaPhoto(media="AgACunknown"), chat_id=1010, message_id=queued.message_id
        )
    with pytest.raises(TelegramBadRequest, match="type of file mismatch"):
        await bot.edit_message_media(
            InputMediaPhoto(media=doc.document.file_id), chat_id=1010, message_id=2
        )
    await bot.delete_message(1010, queued.message_id)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_media(
            InputMediaPhoto(media=photo.photo[-1].file_id), chat_id=1010, message_id=2
        )


async def test_an_album_photo_stays_a_photo(bot: Bot, tg, make_image) -> None:
    await tg.user(1011).send_text("hi")
    album = await bot.send_media_group(
        1011,
        [
            InputMediaPhoto(media=BufferedInputFile(make_image(50, 50, c, "PNG"), f"{c}.png"))
            for c in ("red", "blue")
        ],
    )
    with pytest.raises(TelegramBadRequest, match="in an album to a document"):
        await bot.edit_message_media(
            InputMediaDocument(media=BufferedInputFile(b"x" * 10, "x.bin")),
            chat_id=1011,
            message_id=album[0].message_id,
        )
    edited = await bot.edit_message_media(
        InputMediaPhoto(media=BufferedInputFile(make_image(60, 60, "green", "PNG"), "g.png")),
        chat_id=1011,
        message_id=album[0].message_id,
    )
    assert isinstance(edited, Message) and edited.photo[-1].width == 60


async def test_media_group_from_bot(bot: Bot, tg, make_image) -> None:
    await tg.user(1005).send_text("hi")
    album = await bot.send_media_group(
        1005,
        media=[
            InputMediaPhoto(
                media=BufferedInputFile(make_image(color=c), f"{c}.jpg"),
                caption="Варианты" if c == "red" else None,
            )
            for c in ("red", "green", "blue")
        ],
    )
    assert len(album) == 3
    assert len({m.media_group_id for m in album}) == 1 and album[0].media_group_id
    assert album[0].caption == "Варианты" and album[1].caption is None
    with pytest.raises(TelegramBadRequest, match="wrong number of media"):
        await bot.send_media_group(1005, media=[InputMediaPhoto(media=album[0].photo[-1].file_id)])


async def test_user_uploads_photo_document_and_album(bot: Bot, tg, make_image) -> None:
    user = tg.user(1006, language="en")
    jpeg = make_image(1000, 500, "purple")
    photo = await user.send_photo(jpeg, caption="make it pretty")
    assert photo.text == "make it pretty"
    assert photo.photo[-1]["width"] == 1000 and photo.photo[-1]["height"] == 500
    assert photo.raw["from"]["language_code"] == "en"

    # the bot downloads what the user sent through the real Bot API
    file = await bot.get_file(photo.file_id)
    assert (await bot.download_file(file.file_path)).read() == jpeg  # JPEG kept as is

    png = make_image(64, 64, "white", "PNG")
    doc = await user.send_photo(png, as_document=True, file_name="face.png")
    assert doc.document == {
        **doc.document,
        "file_name": "face.png",
        "mime_type": "image/png",
        "file_size": len(png),
    }
    file = await bot.get_file(doc.file_id)
    assert (await bot.download_file(file.file_path)).read() == png

    album = await user.send_album(
        [make_image(color="red"), make_image(color="blue")], caption="merge these"
    )
    assert len(album) == 2
    assert album[0].media_group_id and album[0].media_group_id == album[1].media_group_id
    assert album[0].text == "merge these" and album[1].text == ""
    updates = await bot(GetUpdates())
    assert [u.update_id for u in updates] == sorted(u.update_id for u in updates)
    assert [u.message.media_group_id for u in updates[-2:]] == [album[0].media_group_id] * 2


async def test_control_upload_accepts_multipart_and_raw_bytes(tg_server, tg, make_image) -> None:
    jpeg = make_image(100, 100)
    async with aiohttp.ClientSession() as http:
        form = aiohttp.FormData()
        form.add_field("user_id", "77")
        form.add_field("caption", "multipart")
        form.add_field("photo", jpeg, filename="x.jpg", content_type="image/jpeg")
        async with http.post(f"{tg_server.url}/_emu/send_photo", data=form) as resp:
            assert resp.status == 200
            first = await resp.json()
        async with http.post(
            f"{tg_server.url}/_emu/send_photo?user_id=77&as_document=1&file_name=raw.jpg",
            data=jpeg,
            headers={"Content-Type": "image/jpeg"},
        ) as resp:
            assert resp.status == 200
            second = await resp.json()
    assert first["message"]["caption"] == "multipart" and first["message"]["photo"]
    assert second["message"]["document"]["file_name"] == "raw.jpg"
    assert second["message"]["document"]["mime_type"] == "image/jpeg"
    with pytest.raises(EmulatorError, match="IMAGE_PROCESS_FAILED"):
        await tg.user(77).send_photo(b"garbage")


async def test_get_file_refuses_files_over_20_mb(bot: Bot, tg) -> None:
    user = tg.user(1007)
    big = b"\0" * (20 * 1024 * 1024 + 1)
    doc = await user.send_document(big, "video.bin")
    assert doc.document and doc.document["file_size"] == len(big)
    with pytest.raises(TelegramBadRequest, match="file is too big"):
        await bot.get_file(doc.file_id)
    small = await user.send_document(b"tiny", "a.txt")
    assert (await bot.get_file(small.file_id)).file_size == 4


async def test_get_updates_offset_long_poll_and_allowed_updates(bot: Bot, tg) -> None:
    user = tg.user(1008)
    first = await user.send_text("one")
    updates = await bot.get_updates(timeout=0)
    assert [u.update_id for u in updates] == [first.update_id]
    assert updates[0].message and updates[0].message.text == "one"
    # not confirmed yet: returned again
    assert [u.update_id for u in await bot.get_updates()] == [first.update_id]
    # confirmed by offset
    assert await bot.get_updates(offset=first.update_id + 1, timeout=0) == []

    # a long poll returns as soon as an update arrives
    poll = asyncio.create_task(bot.get_updates(offset=first.update_id + 1, timeout=30))
    await asyncio.sleep(0)
    second = await user.send_text("two")
    updates = await asyncio.wait_for(poll, 5)
    assert [u.update_id for u in updates] == [second.update_id]

    # allowed_updates persists and filters new updates
    await bot.get_updates(
        offset=second.update_id + 1, timeout=0, allowed_updates=["callback_query"]
    )
    await user.send_text("ignored")
    assert await bot.get_updates(offset=second.update_id + 1, timeout=0) == []


async def test_concurrent_get_updates_terminates_the_older_one(bot: Bot, tg) -> None:
    old = asyncio.create_task(bot.get_updates(timeout=30))
    await asyncio.sleep(0.05)
    newer = asyncio.create_task(bot.get_updates(timeout=30))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await asyncio.wait_for(old, 5)
    msg = await tg.user(1).send_text("x")
    assert [u.update_id for u in await asyncio.wait_for(newer, 5)] == [msg.update_id]


async def test_dispatcher_polling_text_and_callback(bot: Bot, tg) -> None:
    dp = Dispatcher()
    seen: list[tuple[str, int]] = []

    @dp.message(F.text == "/start")
    async def start(message: Message) -> None:
        seen.append(("start", message.message_id))
        await message.answer("Привет! Выберите действие:", reply_markup=KB)

    @dp.callback_query(F.data == "topup")
    async def topup(query: CallbackQuery) -> None:
        seen.append(("topup", query.message.message_id))
        await query.answer("Открываю оплату")
        await query.message.edit_text("Сумма пополнения?")

    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=10))
    try:
        user = tg.user(2001, first_name="Боря")
        sent = await user.send_text("/start")
        menu = await user.wait_for_text("Выберите")
        assert menu.button_texts[:2] == ["💰 Пополнить", "Помощь"]

        press = await menu.press("Пополнить")
        answer = await user.wait_for_answer(press)
        assert answer["text"] == "Открываю оплату" and answer["data"] == "topup"
        edited = await user.wait_for_text("Сумма пополнения")
        assert edited.message_id == menu.message_id and edited.edited
    finally:
        await dp.stop_polling()
        await asyncio.wait_for(polling, 10)
    assert seen == [("start", sent.message_id), ("topup", menu.message_id)]


async def test_press_rules_forged_data_and_double_answer(bot: Bot, tg) -> None:
    user = tg.user(2002)
    await user.send_text("hi")
    sent = await bot.send_message(2002, "menu", reply_markup=KB)
    with pytest.raises(EmulatorError, match="no button"):
        await user.press(sent.message_id, "admin:grant")
    with pytest.raises(EmulatorError, match="no button"):
        await user.press(sent.message_id, text="Nope")
    with pytest.raises(EmulatorError, match="has no callback_data"):
        await user.press(sent.message_id, text="Сайт")
    forged = await user.press(sent.message_id, "admin:grant", forge=True)
    ok = await user.press(sent.message_id, "help")

    updates = await bot.get_updates()
    queries = [u.callback_query for u in updates if u.callback_query]
    assert [(q.id, q.data) for q in queries] == [(forged.id, "admin:grant"), (ok.id, "help")]
    assert queries[0].message and queries[0].message.message_id == sent.message_id
    assert queries[0].from_user.id == 2002

    assert await bot.answer_callback_query(ok.id, text="ok", show_alert=True)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(ok.id)
    answers = await user.callback_answers()
    assert [(a["callback_query_id"], a["show_alert"]) for a in answers] == [(ok.id, True)]


async def test_redelivery_repeats_the_same_update(bot: Bot, tg) -> None:
    dp = Dispatcher()
    received: list[tuple[int, int]] = []

    @dp.message()
    async def handler(message: Message, event_update) -> None:
        received.append((event_update.update_id, message.message_id))
        await message.answer(f"got {message.message_id} #{len(received)}")

    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False))
    try:
        user = tg.user(2003)
        msg = await user.send_text("pay 100")
        await user.wait_for_text("#1")
        await user.redeliver(msg)
        await user.wait_for_text("#2")
    finally:
        await dp.stop_polling()
        await asyncio.wait_for(polling, 10)
    assert received == [(msg.update_id, msg.message_id)] * 2


async def test_webhook_mode_posts_updates_with_secret(bot: Bot, tg, receiver) -> None:
    receiver.statuses = [500]  # first delivery fails: Telegram retries
    assert await bot.set_webhook(receiver.url, secret_token="s3cr3t_token")
    info = await bot.get_webhook_info()
    assert info.url == receiver.url and info.pending_update_count == 0
    with pytest.raises(TelegramConflictError, match="webhook is active"):
        await bot.get_updates()

    user = tg.user(3001)
    msg = await user.send_text("/start")
    requests = await receiver.wait(2)
    assert len(requests) == 2
    for req in requests:
        assert req["headers"]["X-Telegram-Bot-Api-Secret-Token"] == "s3cr3t_token"
        assert req["headers"]["Content-Type"] == "application/json"
        body = json.loads(req["body"])
        assert body["update_id"] == msg.update_id
        assert body["message"]["text"] == "/start"
    info = await bot.get_webhook_info()
    assert info.last_error_message and "500" in info.last_error_message

    # a webhook may answer with a method call; Telegram executes it
    receiver.reply = {"method": "sendMessage", "chat_id": 3001, "text": "from webhook reply"}
    await user.send_text("again")
    reply = await user.wait_for_text("from webhook reply")
    assert reply.from_bot

    assert await bot.delete_webhook(drop_pending_updates=True)
    assert (await bot.get_webhook_info()).url == ""
    after = await user.send_text("polling again")
    assert [u.update_id for u in await bot.get_updates()] == [after.update_id]


async def test_fault_injection_429_500_502_and_delay(bot: Bot, tg, tg_server) -> None:
    await tg.user(4001).send_text("hi")
    await tg.fail_next(kind="429", retry_after=7, methods=["sendMessage"])
    assert (await bot.get_me()).id  # other methods are not affected
    with pytest.raises(TelegramRetryAfter) as err:
        await bot.send_message(4001, "x")
    assert err.value.retry_after == 7
    assert (await bot.send_message(4001, "ok")).text == "ok"  # only the next call

    await tg.fail_next(2, kind="500")
    for _ in range(2):
        with pytest.raises(TelegramServerError):
            await bot.send_chat_action(4001, "typing")
    assert await bot.send_chat_action(4001, "upload_photo")
    assert await tg.user(4001).chat_actions() == ["upload_photo"]

    await tg.fail_next(kind="502")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{tg_server.url}/bot{bot.token}/getMe") as resp:
            assert resp.status == 502 and "Bad Gateway" in await resp.text()

    await tg.delay_next(2.0, methods=["sendMessage"])
    with pytest.raises(TelegramNetworkError, match="timeout"):
        await bot.send_message(4001, "slow", request_timeout=0.3)

    await tg.fail_next(kind="disconnect", methods=["getMe"])
    with pytest.raises(TelegramNetworkError):
        await bot.get_me()
    await tg.fail_next(3, kind="429")
    await tg.reset_faults()
    assert (await bot.send_message(4001, "after reset")).text == "after reset"


async def test_call_log_records_methods_and_params(bot: Bot, tg) -> None:
    await tg.user(4002).send_text("hi")
    await bot.send_message(4002, "menu", reply_markup=KB)
    calls = await tg.calls("sendMessage", chat_id=4002)
    assert len(calls) == 1
    assert calls[0]["params"]["reply_markup"] == KB.model_dump(exclude_none=True)
    assert calls[0]["params"]["text"] == "menu" and calls[0]["ok"] is True
    assert all(c["method"] != "getUpdates" for c in await tg.calls())


async def test_blocked_user_and_commands(bot: Bot, tg) -> None:
    await tg.user(4003).send_text("hi")
    await tg.block(4003)
    with pytest.raises(TelegramForbiddenError, match="blocked by the user"):
        await bot.send_message(4003, "ad")
    await tg.block(4003, blocked=False)
    assert (await bot.send_message(4003, "welcome back")).text == "welcome back"

    commands = [
        BotCommand(command="start", description="Начать"),
        BotCommand(command="balance", description="Баланс"),
    ]
    assert await bot.set_my_commands(commands, language_code="ru")
    got = await bot.get_my_commands(language_code="ru")
    assert [c.model_dump() for c in got] == [c.model_dump() for c in commands]
    assert await bot.get_my_commands() == []
    assert await bot.delete_my_commands(language_code="ru")
    assert await bot.get_my_commands(language_code="ru") == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad Command", description="x")])


async def test_reply_keyboard_is_tracked_for_the_chat(bot: Bot, tg) -> None:
    user = tg.user(4004)
    await user.send_text("/start")
    markup = ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text="🎨 Создать"), KeyboardButton(text="💰 Баланс")]],
        resize_keyboard=True,
    )
    sent = await bot.send_message(4004, "Меню", reply_markup=markup)
    assert sent.reply_markup is None  # Telegram echoes only inline keyboards
    assert await user.reply_keyboard() == ["🎨 Создать", "💰 Баланс"]


async def test_wait_endpoint_times_out_with_408(tg_server, tg) -> None:
    await tg.user(4005).send_text("hello")
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{tg_server.url}/_emu/chats/4005/wait",
            params={"timeout": "0.05", "contains": "never"},
        ) as resp:
            assert resp.status == 408
            assert (await resp.json())["error"] == "timeout"
    with pytest.raises(TimeoutError, match="no matching bot message"):
        await tg.user(4005).wait_for_text("never", timeout=0.05)


async def test_raw_clients_json_urlencoded_and_multipart(tg_server, tg, make_image) -> None:
    """Other clients than aiogram: JSON bodies with objects, urlencoded, curl-style files."""
    await tg.user(4006).send_text("hi")
    base = f"{tg_server.url}/bot42:raw-token"
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{base}/sendMessage",
            json={
                "chat_id": 4006,
                "text": "json",
                "reply_markup": {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]},
            },
        ) as resp:
            body = await resp.json()
            assert (
                body["ok"]
                and body["result"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "a"
            )
        async with http.post(
            f"{base}/sendMessage", data={"chat_id": "4006", "text": "form"}
        ) as resp:
            assert (await resp.json())["result"]["text"] == "form"
        form = aiohttp.FormData()
        form.add_field("chat_id", "4006")
        form.add_field("photo", make_image(50, 40), filename="p.jpg")
        async with http.post(f"{base}/sendPhoto", data=form) as resp:
            result = (await resp.json())["result"]
            assert [(p["width"], p["height"]) for p in result["photo"]] == [(50, 40)]
        async with http.post(f"{base}/sendMessage", json={"chat_id": 4006}) as resp:
            assert resp.status == 400
            assert await resp.json() == {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: message text is empty",
            }


async def test_many_users_at_once(bot: Bot, tg) -> None:
    dp = Dispatcher()

    @dp.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(f"echo {message.text}")

    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False))
    try:
        users = [tg.user(10_000 + i) for i in range(120)]

        async def talk(user) -> str:
            await user.send_text(f"hello {user.user_id}")
            return (await user.wait_for_text("echo", timeout=30)).text

        replies = await asyncio.gather(*(talk(u) for u in users))
    finally:
        await dp.stop_polling()
        await asyncio.wait_for(polling, 10)
    assert replies == [f"echo hello {u.user_id}" for u in users]


async def test_two_bots_have_separate_state(tg_server, tg) -> None:
    api = TelegramAPIServer.from_base(tg_server.url)
    one = Bot("111:first-token", session=AiohttpSession(api=api))
    two = Bot("222:second-token", session=AiohttpSession(api=api))
    try:
        assert (await one.get_me()).id == 111
        assert (await two.get_me()).id == 222
        await tg.user(5).send_text("to the default (first) bot")
        assert len(await one.get_updates()) == 1
        assert await two.get_updates() == []
    finally:
        await close_bot(one)
        await close_bot(two)


@pytest.mark.parametrize("in_background", [True, False])
async def test_aiogram_webhook_handler_end_to_end(bot: Bot, tg, in_background: bool) -> None:
    """aiogram's own SimpleRequestHandler behind the webhook: secret check, and (when not in
    background) the reply-in-response path, which aiogram encodes as multipart."""
    from aiogram.webhook.aiohttp_server import SimpleRequestHandler
    from aiohttp import web

    from sandbox._common import ServerHandle

    dp = Dispatcher()

    @dp.message(F.text)
    async def echo(message: Message):
        if in_background:
            await message.answer(f"background {message.text}")
            return None
        return message.answer(f"in response {message.text}")

    app = web.Application()
    SimpleRequestHandler(
        dp, bot, handle_in_background=in_background, secret_token="hook-secret"
    ).register(app, path="/tg")
    async with ServerHandle(app) as server:
        await bot.set_webhook(f"{server.url}/tg", secret_token="hook-secret")
        user = tg.user(6001)
        await user.send_text("ping")
        reply = await user.wait_for_text("ping")
        assert reply.text == ("background ping" if in_background else "in response ping")
        via = [c["via"] for c in await tg.calls("sendMessage")]
        assert via == (["http"] if in_background else ["webhook_reply"])

        # a wrong secret is refused by aiogram: the emulator keeps the update and retries
        await bot.set_webhook(f"{server.url}/tg", secret_token="other-secret")
        await user.send_text("lost")
        await asyncio.wait_for(_until_attempts(tg, 2), 5)
        info = await tg.bot_info()
        assert any(r.get("status") == 401 for r in info["webhook_log"])
        await bot.delete_webhook()


async def _until_attempts(tg, count: int) -> None:
    while True:
        info = await tg.bot_info()
        if sum(1 for r in info["webhook_log"] if r.get("status") == 401) >= count:
            return
        await asyncio.sleep(0.01)


async def test_flood_control_per_chat(bot: Bot, tg) -> None:
    await tg.user(7001).send_text("hi")
    await tg.user(7002).send_text("hi")
    await tg.set_flood_limits(per_chat=2, per_chat_window=60, global_limit=0)
    assert (await bot.send_message(7001, "1")).text == "1"
    assert (await bot.send_message(7001, "2")).text == "2"
    with pytest.raises(TelegramRetryAfter) as err:
        await bot.send_message(7001, "3")
    assert 1 <= err.value.retry_after <= 60
    assert (await bot.send_message(7002, "other chat")).text == "other chat"
    assert await bot.send_chat_action(7001, "typing")  # not a message: not limited
    await tg.clear_flood_limits()
    assert (await bot.send_message(7001, "3")).text == "3"


async def test_user_edits_a_message(bot: Bot, tg) -> None:
    user = tg.user(7003)
    msg = await user.send_text("/start")
    edited = await user.edit_text(msg, "/help")
    assert edited.message_id == msg.message_id and edited.text == "/help" and edited.edited
    updates = await bot.get_updates()
    assert updates[-1].edited_message is not None
    assert updates[-1].edited_message.text == "/help"
    assert updates[-1].update_id == edited.update_id
    with pytest.raises(EmulatorError):
        await user.edit_text(999, "nope")


async def test_send_photo_by_url_is_fetched_like_telegram(bot: Bot, tg, make_image) -> None:
    from aiohttp import web

    from sandbox._common import ServerHandle

    png = make_image(400, 300, "yellow", "PNG")

    async def image(_: web.Request) -> web.Response:
        return web.Response(body=png, content_type="image/png")

    app = web.Application()
    app.router.add_get("/img.png", image)
    async with ServerHandle(app) as files:
        await tg.user(7004).send_text("hi")
        sent = await bot.send_photo(7004, f"{files.url}/img.png")
        assert (sent.photo[-1].width, sent.photo[-1].height) == (400, 300)
        doc = await bot.send_document(7004, f"{files.url}/img.png")
        assert doc.document and doc.document.file_name == "img.png"
        assert await tg.download(doc.document.file_id) == png
        with pytest.raises(TelegramBadRequest, match="failed to get HTTP URL content"):
            await bot.send_photo(7004, f"{files.url}/missing.png")
