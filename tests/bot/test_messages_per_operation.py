"""Telegram capacity: the Bot API messages an operation sends or edits, counted from the
emulator's log, with the bot long-polling and a real ``python -m workers`` delivering.

A bot may send about 30 messages a second in all, and every message sent or edited counts.
An operation used to cost five ("queued", the "processing" edit, sendPhoto, sendDocument,
deleteMessage); now the "queued" message becomes "processing" and then the result itself, and
the lossless file is sent only when the user taps 📎 under the result.
"""

from __future__ import annotations

import io
from pathlib import Path

from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup
from PIL import Image

from billing.models import OperationStatus
from sandbox._common import ServerHandle
from tests.bot.conftest import StartBot, run_worker_burst
from tg.buttons import RESULT_FILE

# Every Bot API method that sends, edits or deletes a message (chat actions and getFile
# are not messages).
MESSAGE_METHODS = (
    "sendMessage",
    "sendPhoto",
    "sendDocument",
    "sendMediaGroup",
    "editMessageText",
    "editMessageCaption",
    "editMessageMedia",
    "editMessageReplyMarkup",
    "deleteMessage",
    "deleteMessages",
)
GOAL = 3


async def test_an_operation_costs_at_most_three_messages(
    start_bot: StartBot,
    tg,
    tg_server: ServerHandle,
    photo: bytes,
    db_url: str,
    redis_url: str,
    tmp_path: Path,
) -> None:
    app = await start_bot(polling=True, TELEGRAM_API_URL=tg_server.url)
    modes = {
        9501: ("⬆️ Улучшить", "увеличу в 2 раза", None),
        9502: ("✏️ Редактировать", "подписью-командой", "ч/б, повернуть вправо"),
        9503: ("✨ Ретушь", "мягкую ретушь", None),
    }
    since: dict[int, int] = {}
    for chat_id, (button, prompt, caption) in modes.items():
        user = tg.user(chat_id)
        await user.send_text("/start")
        await user.press(await user.wait_for_text("Что сделаем?"), text=button)
        await user.wait_for_text(prompt)
        since[chat_id] = await tg.last_call_seq()  # from the user's input on
        await user.send_photo(photo, caption=caption)
        await user.wait_for_text("В очереди")

    await run_worker_burst(tmp_path, db_url, redis_url, tg_server.url)

    for chat_id, (button, _, _) in modes.items():
        user = tg.user(chat_id)
        calls = await tg.calls(MESSAGE_METHODS, chat_id=chat_id, since=since[chat_id])
        methods = [c["method"] for c in calls if c["ok"]]
        assert methods == ["sendMessage", "editMessageText", "editMessageMedia"], button
        assert len(methods) <= GOAL
        # What the user saw is all there: queued, working, the result (one message).
        [result] = [m for m in await user.bot_messages() if m.photo or m.document]
        assert result.photo and not result.deleted, button
        edited = {c["params"]["message_id"] for c in calls if c["method"].startswith("edit")}
        assert edited == {result.message_id}, button  # both edits: the "queued" message
        shown = [e.get("text", "") for e in result.raw["edits"]]
        assert "В очереди" in shown[0] and "Обрабатываю" in shown[1], button
        assert "upload_photo" in await user.chat_actions(), button

    # ⬆️ upscale's result carries 📎: the lossless file comes on a tap, as a reply, once per
    # tap, by Telegram's file id the second time (no upload).
    user = tg.user(9501)
    [result] = [m for m in await user.bot_messages() if m.photo]
    assert [m for m in await user.bot_messages() if m.document] == []
    before = await tg.last_call_seq()
    await user.press(result, text="📎 Файл без сжатия")
    document = await user.wait_for(lambda m: m.document is not None)
    assert document.raw["reply_to_message"]["message_id"] == result.message_id
    assert document.text == "Файл без сжатия."
    with Image.open(io.BytesIO(await document.download())) as exact:
        assert exact.size == (2 * 512, 2 * 512)
    assert len(await tg.calls("sendDocument", chat_id=9501, since=before)) == 1
    await user.press(result, text="📎 Файл без сжатия")
    again = await user.wait_for(
        lambda m: m.document is not None and m.message_id != document.message_id
    )
    assert again.document["file_id"] == document.document["file_id"]  # re-sent, not uploaded
    # ✏️ edit (not a lossless kind) offers no file
    [edited] = [m for m in await tg.user(9502).bot_messages() if m.photo]
    assert "📎 Файл без сжатия" not in edited.button_texts

    assert [op.status for op in await app.operations()] == [OperationStatus.SUCCEEDED] * 3


async def test_a_file_no_longer_kept_is_said_so_and_nothing_is_sent(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    """📎 a day later (the file's time in Redis is over), or on a message whose file was never
    kept: an alert says so, no document goes out, the photo stays."""
    app = await start_bot()
    user = tg.user(9511)
    await user.send_text("/start")
    await user.wait_for_text("Что сделаем?")
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text="📎 Файл без сжатия", callback_data=RESULT_FILE)]
        ]
    )
    result = await app.bot.send_photo(
        9511, BufferedInputFile(photo, "result.jpg"), caption="готово", reply_markup=keyboard
    )
    before = await tg.last_call_seq()
    query = await user.press(result.message_id, text="📎 Файл без сжатия")
    answer = await user.wait_for_answer(query)
    assert answer["show_alert"] and "хранится 6 ч, этот уже удалён" in answer["text"]
    assert await tg.calls("sendDocument", chat_id=9511, since=before) == []
    assert [m.photo != [] for m in await user.bot_messages()][-1]


async def test_a_refunded_operation_costs_at_most_three_messages(
    start_bot: StartBot,
    tg,
    tg_server: ServerHandle,
    db_url: str,
    redis_url: str,
    tmp_path: Path,
) -> None:
    """A failed operation (✨ retouch of a photo without a face) tells why and what came back
    in the "queued" message itself: "queued", "processing", the refund notice — three, as a
    delivered one (it used to send the notice and delete "queued": four). Once."""
    faceless = (Path(__file__).resolve().parents[1] / "fixtures" / "coffee.jpg").read_bytes()
    app = await start_bot(polling=True, TELEGRAM_API_URL=tg_server.url)
    user = tg.user(9521)
    await user.send_text("/start")
    await user.press(await user.wait_for_text("Что сделаем?"), text="✨ Ретушь")
    await user.wait_for_text("мягкую ретушь")
    since = await tg.last_call_seq()
    await user.send_photo(faceless)
    await user.wait_for_text("В очереди")

    await run_worker_burst(tmp_path, db_url, redis_url, tg_server.url)

    [op] = await app.operations()
    assert op.status == OperationStatus.REFUNDED
    calls = await tg.calls(MESSAGE_METHODS, chat_id=9521, since=since)
    methods = [c["method"] for c in calls if c["ok"]]
    assert methods == ["sendMessage", "editMessageText", "editMessageText"]
    assert len(methods) <= GOAL
    # What the user sees: the "queued" message became the reason and the refund, once.
    [notice] = [m for m in await user.bot_messages() if "Не получилось" in m.text]
    assert notice.message_id == op.status_message_id and not notice.deleted
    assert "лицо" in notice.text and "Бесплатная операция возвращена" in notice.text
    shown = [e.get("text", "") for e in notice.raw["edits"]]
    assert "В очереди" in shown[0] and "Обрабатываю" in shown[1]
    everything = await user.bot_messages(include_deleted=True)
    assert sum("Не получилось" in m.text for m in everything) == 1
