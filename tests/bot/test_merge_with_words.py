"""Merge run by a multi-image model (issue 15) takes two photos and a sentence on how to
combine them — a caption of either photo or a message after them; run locally it stays a
plain pair. Checked before any charge, like every input."""

from __future__ import annotations

from bot.inputs import Answer, Ready, assess
from tests.bot.conftest import StartBot
from tests.bot.test_inputs import _message
from tests.conftest import make_settings

SETTINGS = make_settings("sqlite://", FAL_KEY="fal-test-key")
PHOTO = (800, 600, 10)


def _fal(message, data):  # type: ignore[no-untyped-def]
    return assess("merge", message, data, SETTINGS, "ru", None, "fal")


def test_two_photos_then_a_sentence() -> None:
    first = _fal(_message(1, photo=PHOTO), {})
    assert isinstance(first, Answer) and first.key == "bot-pair-need-second"
    second = _fal(_message(2, photo=PHOTO), first.remember)
    assert isinstance(second, Answer) and second.key == "bot-merge-need-words"
    data = {**first.remember, **second.remember}
    assert data["pair"] == ["photo1", "photo2"]
    command = _fal(_message(3, text="/start_over"), data)
    assert isinstance(command, Answer) and command.key == "bot-input-command"
    empty = _fal(_message(3, text="\u200b"), data)
    assert isinstance(empty, Answer) and empty.key == "bot-merge-need-words"
    ready = _fal(_message(4, text="  мы вдвоём на пляже  "), data)
    assert isinstance(ready, Ready)
    assert ready.media.file_ids == ("photo1", "photo2")
    assert ready.media.text == "мы вдвоём на пляже"
    assert ready.remember["pair"] is None  # cleared for the next request


def test_an_album_with_a_caption_is_ready_at_its_second_photo() -> None:
    first = _fal(_message(5, photo=PHOTO, caption="в одной лодке", group="g"), {})
    assert isinstance(first, Answer) and first.key == ""
    ready = _fal(_message(6, photo=PHOTO, group="g"), first.remember)
    assert isinstance(ready, Ready)
    assert (ready.media.file_ids, ready.media.text) == (("photo5", "photo6"), "в одной лодке")
    assert ready.media.notes == ()  # the caption was used, not "unused"


def test_a_sentence_before_two_photos_asks_for_them() -> None:
    alone = _fal(_message(1, text="мы на пляже"), {})
    assert isinstance(alone, Answer) and alone.key == "bot-need-photo"
    first = _fal(_message(2, photo=PHOTO), {})
    one = _fal(_message(3, text="мы на пляже"), first.remember)
    assert isinstance(one, Answer) and one.key == "bot-pair-need-second"


def test_a_new_photo_starts_a_new_pair() -> None:
    data = {"pair": ["photo1", "photo2"]}
    third = _fal(_message(3, photo=PHOTO), data)
    assert isinstance(third, Answer) and third.remember["pair"] is None
    assert third.remember["first"] == "photo3"


def test_run_locally_merge_stays_a_pair_without_words() -> None:
    first = assess("merge", _message(1, photo=PHOTO), {}, SETTINGS, "ru")
    ready = assess("merge", _message(2, photo=PHOTO), first.remember, SETTINGS, "ru")
    assert isinstance(ready, Ready) and ready.media.text is None


async def test_the_bot_asks_for_the_sentence_and_queues_with_the_model(
    start_bot: StartBot, tg, photo: bytes, photo2: bytes
) -> None:
    app = await start_bot(FAL_KEY="fal-test-key")
    user = tg.user(8401)
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    await user.press(menu, text="🔗 Объединить")
    prompt = await user.wait_for_text("как их объединить")
    assert "🤖 Модель: fal-ai/flux-pro/kontext/max/multi" in prompt.text
    await user.send_photo(photo)
    await user.wait_for_text("Теперь пришлите второе")
    await user.send_photo(photo2)
    await user.wait_for_text("Обе фотографии есть")
    assert await app.operations() == []
    await user.send_text("астронавт и учёный за одним столом")
    await user.wait_for_text("В очереди")
    [operation] = await app.operations()
    assert operation.type == "merge"
    assert operation.input_ref["text"] == "астронавт и учёный за одним столом"
    assert len(operation.input_ref["file_ids"]) == 2
    assert operation.input_ref["model"]["model_id"] == "fal-ai/flux-pro/kontext/max/multi"
