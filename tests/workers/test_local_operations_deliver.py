"""Every local operation end to end: charged → queued → a forking worker downloads the inputs
from the Telegram emulator by file id, runs the operation, sends the result with its caption,
posts the hold; the "в очереди" message becomes "обрабатываю…" and then the result itself
(editMessageMedia): one message per operation, the lossless file kept for its button."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from billing.models import LedgerKind
from imaging.faceswap import detect_faces
from imaging.merge import merge_layout
from jobqueue import result_files
from sandbox.telegram_client import Message


def decode_image(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.int16)


def decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"), dtype=np.int16)


async def result_of(h, user, operation_id: int) -> tuple[Message, np.ndarray]:
    """The photo (or document) the job sent, and its pixels as Telegram serves them."""
    op = await h.wait_final(operation_id)
    assert op.status == "succeeded", f"{op.status}: {op.error}\n{h.logs()}"
    ref = op.result_ref or {}
    message_id = ref.get("photo_message_id") or ref.get("document_message_id")
    messages = {m.message_id: m for m in await user.bot_messages()}
    message = messages[message_id]
    pixels = decode(await user.download(message.file_id))
    return message, pixels


async def test_each_local_operation_delivers_its_result(harness_factory, images) -> None:
    h = harness_factory(FREE_OPERATIONS_COUNT=1)
    h.start_worker()
    astronaut, hopper, coffee = (
        images("astronaut.jpg"),
        images("hopper.jpg"),
        images("coffee.jpg"),
    )

    users = {name: h.user() for name in ("upscale", "retouch", "edit", "merge", "swap", "text")}
    users["edit"] = h.user(language="en")
    ids = {}
    up = users["upscale"]
    ids["upscale"] = await h.new_operation(up, "upscale", [await h.upload(up, astronaut)])
    rt = users["retouch"]
    ids["retouch"] = await h.new_operation(rt, "retouch", [await h.upload(rt, hopper)])
    ed = users["edit"]
    ids["edit"] = await h.new_operation(
        ed, "edit", [await h.upload(ed, coffee)], text="ч/б, повернуть 90", balance=1000, free=0
    )
    mg = users["merge"]
    ids["merge"] = await h.new_operation(
        mg,
        "merge",
        [await h.upload(mg, astronaut), await h.upload(mg, hopper)],
        balance=1000,
        free=0,
    )
    sw = users["swap"]
    ids["swap"] = await h.new_operation(
        sw, "face_swap", [await h.upload(sw, astronaut), await h.upload(sw, hopper)]
    )
    tx = users["text"]
    ids["text"] = await h.new_operation(
        tx, "add_text", [await h.upload(tx, coffee)], text="Привет, мир! Съешь же ещё"
    )

    # ⬆️ upscale: twice the width and height, as a photo; the uncompressed file is kept for
    # the photo's "📎 Файл без сжатия" button (the bot sends it on a tap: tests/bot)
    message, pixels = await result_of(h, up, ids["upscale"])
    assert pixels.shape[:2] == (1024, 1024)
    assert "увеличено в 2×: 1024×1024" in message.text
    assert "Использована бесплатная операция. Осталось бесплатных: 0" in message.text
    assert message.button("📎 Файл без сжатия").callback_data == "result:file"
    op = await h.operation(ids["upscale"])
    assert op.result_ref["file_button"] is True and "document_message_id" not in op.result_ref
    kept = h.redis.hgetall(result_files.key(h.bot.id, up.chat_id, message.message_id))
    assert decode(kept[b"data"]).shape[:2] == (1024, 1024) and kept[b"filename"] == b"upscale.jpg"
    ttl = h.redis.ttl(result_files.key(h.bot.id, up.chat_id, message.message_id))
    assert 3600 < ttl <= h.settings.RESULT_FILE_KEEP_SECONDS

    # ✨ retouch: same size, pixels changed
    message, pixels = await result_of(h, rt, ids["retouch"])
    original = decode(hopper)
    assert pixels.shape == original.shape
    # Telegram's re-encoding alone changes hopper.jpg by about 1 on average; retouch by ~5.
    assert np.abs(pixels - original).mean() > 2.5
    assert "Ретушь готова" in message.text

    # ✏️ edit (an English-speaking user): grayscale and turned: 600×400 → 400×600
    message, pixels = await result_of(h, ed, ids["edit"])
    assert pixels.shape[:2] == (600, 400)
    channel_spread = np.abs(pixels[..., 0] - pixels[..., 1]) + np.abs(
        pixels[..., 1] - pixels[..., 2]
    )
    assert channel_spread.mean() < 2.0 and np.abs(decode(coffee)).std() > 10
    assert message.text.startswith("✏️ Done: ")
    assert "Charged 10 ₽. Balance: 0 ₽." in message.text

    # 🔗 merge: side by side at the common height
    message, pixels = await result_of(h, mg, ids["merge"])
    wa, wb, height = merge_layout((512, 512), (512, 600))
    assert pixels.shape[:2] == (height, wa + wb)
    assert "Списано 10 ₽. Баланс: 0 ₽." in message.text

    # 🔄 face swap: photo B's size, its face region changed, the rest nearly not
    message, pixels = await result_of(h, sw, ids["swap"])
    target = decode(hopper)
    assert pixels.shape == target.shape
    [face] = detect_faces(hopper)[:1]
    inside = np.zeros(target.shape[:2], dtype=bool)
    inside[face.y : face.y + face.h, face.x : face.x + face.w] = True
    change = np.abs(pixels - target).mean(axis=2)
    assert change[inside].mean() > 10, change[inside].mean()  # about 30: another face
    assert change[~inside].mean() < 3, change[~inside].mean()  # about 1: re-encoding only
    assert "Лицо заменено" in message.text

    # 📝 add text (free of charge): same size, pixels changed, nothing taken
    message, pixels = await result_of(h, tx, ids["text"])
    assert pixels.shape == decode(coffee).shape
    assert np.abs(pixels - decode(coffee)).mean() > 1.0
    assert "Текст добавлен" in message.text and "Бесплатно" in message.text

    for name, operation_id in ids.items():
        assert await h.entries(operation_id, LedgerKind.REFUND) == 0, name
        op = await h.operation(operation_id)
        assert op.attempts == 1 and op.error is None, name
        user = users[name]
        everything = await user.messages(include_deleted=True)
        # the "queued" message became "processing…", then the result: nothing else was sent
        [result] = [m for m in everything if m.from_bot]
        assert result.message_id == op.status_message_id == op.result_ref["photo_message_id"]
        assert not result.deleted and result.photo, name
        processing = "⏳ Processing…" if user.language == "en" else "⏳ Обрабатываю…"
        assert [e.get("text") for e in result.raw["edits"]] == ["⏳ В очереди…", processing]
        assert "upload_photo" in await user.chat_actions(), name


async def test_result_over_telegrams_photo_limits_goes_as_a_document(harness_factory) -> None:
    """An upscaled panorama 4200×200 (sides 21:1, Telegram takes photos up to 20:1) is sent
    as a document only, with the full caption."""
    h = harness_factory()
    h.start_worker()
    user = h.user()
    strip = io.BytesIO()
    Image.linear_gradient("L").resize((2100, 100)).convert("RGB").save(strip, "PNG")
    file_id = await h.upload(user, strip.getvalue(), as_document=True, file_name="strip.png")
    operation_id = await h.new_operation(user, "upscale", [file_id])

    op = await h.wait_final(operation_id)
    assert op.status == "succeeded", f"{op.status}: {op.error}\n{h.logs()}"
    assert "photo_message_id" not in op.result_ref
    # the "queued" message became the document: the only message
    [document] = await user.bot_messages()
    assert document.message_id == op.result_ref["document_message_id"] == op.status_message_id
    assert op.result_ref["file_id"] == document.file_id
    assert document.button_texts == []
    assert document.text.startswith("⬆️ Фото увеличено в 2×: 4200×200.")
    assert decode(await user.download(document.file_id)).shape[:2] == (200, 4200)
    assert not [m for m in await user.bot_messages() if m.photo]


async def test_a_local_merge_of_three_photos_puts_all_three_side_by_side(
    harness_factory, images
) -> None:
    """🔗 without its model: the collage takes every photo sent (2 to 4), in that order."""
    h = harness_factory(FREE_OPERATIONS_COUNT=1)
    h.start_worker()
    user = h.user()
    photos = [images("astronaut.jpg"), images("hopper.jpg"), images("coffee.jpg")]
    file_ids = [await h.upload(user, data) for data in photos]
    operation_id = await h.new_operation(user, "merge", file_ids)
    message, pixels = await result_of(h, user, operation_id)
    *widths, height = merge_layout(*(Image.open(io.BytesIO(p)).size for p in photos))
    assert pixels.shape[:2] == (height, sum(widths))
    x = 0
    for data, width in zip(photos, widths, strict=True):
        with Image.open(io.BytesIO(data)) as original:
            expected = decode_image(original.convert("RGB").resize((width, height)))
        part = pixels[:, x : x + width]
        assert np.abs(part - expected).mean() < 12, x  # this photo, here
        x += width
    assert message.text.startswith("🔗")
