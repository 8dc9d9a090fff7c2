"""Every operation has a minimum input size (jobqueue.catalogue): a smaller photo is refused
before the charge, with the minimum in the answer. A 1×1 photo was charged and "upscaled"
to 2×2."""

from __future__ import annotations

import io

import pytest
from aiogram.types import Document
from PIL import Image

from bot.inputs import Answer, Ready, assess
from jobqueue.catalogue import entries, min_side
from tests.bot.conftest import StartBot
from tests.bot.test_inputs import SETTINGS, _message
from texts.i18n import t

PHOTO_MODES = [entry.type.value for entry in entries() if entry.photos]


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 160, 90)).save(buffer, "PNG")
    return buffer.getvalue()


def test_every_photo_mode_has_a_minimum() -> None:
    assert set(PHOTO_MODES) == {"edit", "merge", "face_swap", "retouch", "upscale", "add_text"}
    for mode in PHOTO_MODES:
        assert min_side(mode) >= 32


@pytest.mark.parametrize("mode", PHOTO_MODES)
@pytest.mark.parametrize("lang", ["ru", "en"])
def test_a_photo_under_the_minimum_is_refused_with_the_minimum(mode: str, lang: str) -> None:
    minimum = min_side(mode)
    data = {"photo": None} if mode in ("edit", "add_text") else {}
    for size in ((1, 1), (minimum - 1, 900), (900, minimum - 1)):
        verdict = assess(mode, _message(photo=(*size, 10), caption="ч/б"), data, SETTINGS, lang)
        assert isinstance(verdict, Answer) and verdict.key == "bot-input-too-small", size
        text = t(verdict.key, lang, **verdict.args)
        assert f"{size[0]}×{size[1]}" in text and str(minimum) in text
    at_minimum = _message(photo=(minimum, minimum, 10), caption="ч/б")
    verdict = assess(mode, at_minimum, data, SETTINGS, lang)
    assert not (isinstance(verdict, Answer) and verdict.key == "bot-input-too-small")


def test_a_second_photo_under_the_minimum_keeps_the_first() -> None:
    first = assess("face_swap", _message(1, photo=(500, 500, 10)), {}, SETTINGS, "ru")
    assert isinstance(first, Answer) and first.remember is not None
    tiny = assess("face_swap", _message(2, photo=(20, 20, 10)), first.remember, SETTINGS, "ru")
    assert isinstance(tiny, Answer) and tiny.key == "bot-input-too-small"
    assert tiny.remember is None  # the first photo stays
    second = assess("face_swap", _message(3, photo=(500, 500, 10)), first.remember, SETTINGS, "ru")
    assert isinstance(second, Ready)


def test_a_photo_under_the_minimum_drops_the_photo_waiting_for_its_text() -> None:
    tiny = assess("edit", _message(2, photo=(8, 8, 10)), {"photo": "p"}, SETTINGS, "ru")
    assert isinstance(tiny, Answer) and tiny.key == "bot-input-too-small"
    assert tiny.remember == {"photo": None}


def test_an_image_documents_header_size_is_checked() -> None:
    from imaging.header import ImageInfo

    document = Document(file_id="d", file_unique_id="d", mime_type="image/png", file_size=10)
    header = ImageInfo(width=3, height=2, format="png")
    verdict = assess("retouch", _message(document=document), {}, SETTINGS, "ru", header)
    assert isinstance(verdict, Answer) and verdict.key == "bot-input-too-small"


async def test_a_one_pixel_photo_is_refused_before_the_charge(start_bot: StartBot, tg) -> None:
    app = await start_bot()
    user = tg.user(8401)
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    await user.press(menu, text="⬆️ Улучшить")
    await user.wait_for_text("увеличу в 2 раза")
    entries = await app.ledger_count()
    await user.send_photo(_png(1, 1))
    reply = await user.wait_for_text("слишком маленькое")
    assert "1×1" in reply.text and "не меньше 64 точек" in reply.text
    assert "Ничего не списано" in reply.text
    # As a file, too: the header the bot reads says 1×1.
    await user.send_document(_png(1, 1), "dot.png", mime_type="image/png")
    await user.wait_for_text("слишком маленькое")
    assert await app.operations() == []
    assert await app.ledger_count() == entries
    account = await app.user(8401)
    assert account is not None and account.free_operations_left == 4
    await user.send_photo(_png(64, 64))  # the mode stayed open; the minimum itself is fine
    await user.wait_for_text("В очереди")
    assert len(await app.operations()) == 1
