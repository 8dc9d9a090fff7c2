"""Merge takes 2 to 4 photos (issue 15): one by one or as albums, counted as they come,
completed by "✅ Готово" (or the fourth). Run by a multi-image model it needs a sentence on
how to combine them too: a caption, or a message after the photos (which also says they are
all there). A fifth photo gets a clear answer. Checked before any charge, like every input;
nothing is charged for a flow left unfinished."""

from __future__ import annotations

from bot.inputs import Answer, Ready, assess
from tests.bot.conftest import StartBot
from tests.bot.test_inputs import _message
from tests.conftest import make_settings

SETTINGS = make_settings("sqlite://", FAL_KEY="fal-test-key")
PHOTO = (800, 600, 10)


def _fal(message, data):  # type: ignore[no-untyped-def]
    return assess("merge", message, data, SETTINGS, "ru", None, "fal")


def _local(message, data):  # type: ignore[no-untyped-def]
    return assess("merge", message, data, SETTINGS, "ru")


def _step(assess_one, message, data):  # type: ignore[no-untyped-def]
    verdict = assess_one(message, data)
    if isinstance(verdict, Answer) and verdict.remember:
        data = {**data, **verdict.remember}
    return verdict, data


def test_three_photos_then_a_sentence() -> None:
    first, data = _step(_fal, _message(1, photo=PHOTO), {})
    assert isinstance(first, Answer) and first.key == "bot-several-need-more"
    for n in (2, 3):
        got, data = _step(_fal, _message(n, photo=PHOTO), data)
        assert isinstance(got, Answer) and got.key == "bot-several-got-words"
        assert got.args == {"count": n, "max": 4} and got.keyboard == "several"
    command = _fal(_message(4, text="/start_over"), data)
    assert isinstance(command, Answer) and command.key == "bot-input-command"
    empty = _fal(_message(4, text="\u200b"), data)
    assert isinstance(empty, Answer) and empty.key == "bot-merge-need-words"
    ready = _fal(_message(5, text="  мы втроём на пляже  "), data)
    assert isinstance(ready, Ready)
    assert ready.media.file_ids == ("photo1", "photo2", "photo3")
    assert ready.media.text == "мы втроём на пляже"
    assert ready.remember["photos"] is None  # cleared for the next request


def test_done_without_a_sentence_asks_for_it_then_the_fourth_photo_needs_it_too() -> None:
    data: dict = {}
    for n in (1, 2):
        _, data = _step(_fal, _message(n, photo=PHOTO), data)
    done = _fal(_message(3, text="✅ Готово"), data)
    assert isinstance(done, Answer) and done.key == "bot-merge-need-words"
    for n in (4, 5):
        last, data = _step(_fal, _message(n, photo=PHOTO), data)
    assert isinstance(last, Answer) and last.key == "bot-merge-need-words"
    fifth = _fal(_message(6, photo=PHOTO), data)
    assert isinstance(fifth, Answer) and fifth.key == "bot-several-too-many"
    assert fifth.args == {"max": 4} and fifth.remember is None  # not added
    ready = _fal(_message(7, text="все четверо за столом"), data)
    assert isinstance(ready, Ready)
    assert ready.media.file_ids == ("photo1", "photo2", "photo4", "photo5")


def test_an_album_with_a_caption_waits_for_done_and_uses_the_caption() -> None:
    first, data = _step(_fal, _message(5, photo=PHOTO, caption="в одной лодке", group="g"), {})
    assert isinstance(first, Answer) and first.key == ""  # the album goes on
    second, data = _step(_fal, _message(6, photo=PHOTO, group="g"), data)
    assert isinstance(second, Answer) and second.key == "bot-several-got-album-words"
    third, data = _step(_fal, _message(7, photo=PHOTO, group="g"), data)
    assert isinstance(third, Answer) and third.key == ""  # said once per album, counted
    ready = _fal(_message(8, text="готово"), data)
    assert isinstance(ready, Ready)
    assert ready.media.file_ids == ("photo5", "photo6", "photo7")
    assert (ready.media.text, ready.media.notes) == ("в одной лодке", ())


def test_an_album_of_four_with_a_caption_is_ready_at_its_fourth_photo() -> None:
    data: dict = {}
    for n in (1, 2, 3):
        caption = "мы вчетвером" if n == 1 else None
        _, data = _step(_fal, _message(n, photo=PHOTO, caption=caption, group="g"), data)
    ready = _fal(_message(4, photo=PHOTO, group="g"), data)
    assert isinstance(ready, Ready) and ready.media.text == "мы вчетвером"
    assert len(ready.media.file_ids) == 4


def test_album_photos_handled_out_of_order_keep_the_sent_order() -> None:
    data: dict = {}
    for n in (12, 10, 11):
        _, data = _step(_local, _message(n, photo=PHOTO, group="g"), data)
    ready = _local(_message(13, text="Done"), data)
    assert isinstance(ready, Ready) and ready.media.file_ids == ("photo10", "photo11", "photo12")


def test_a_sentence_or_done_before_two_photos_asks_for_them() -> None:
    alone = _fal(_message(1, text="мы на пляже"), {})
    assert isinstance(alone, Answer) and alone.key == "bot-several-need-photos"
    done = _local(_message(1, text="✅ Готово"), {})
    assert isinstance(done, Answer) and done.keyboard == "remove"  # a stale button
    _, data = _step(_fal, _message(2, photo=PHOTO), {})
    one = _fal(_message(3, text="мы на пляже"), data)
    assert isinstance(one, Answer) and one.key == "bot-several-need-more"


def test_run_locally_merge_takes_two_to_four_photos_and_no_words() -> None:
    data: dict = {}
    for n in (1, 2):
        _, data = _step(_local, _message(n, photo=PHOTO), data)
    words = _local(_message(3, text="на пляже"), data)
    assert isinstance(words, Answer) and words.key == "bot-several-no-words"
    add = _local(_message(3, text="➕ Добавить"), data)
    assert isinstance(add, Answer) and add.key == "bot-several-add"
    ready = _local(_message(4, text="✅ Готово"), data)
    assert isinstance(ready, Ready) and ready.media.file_ids == ("photo1", "photo2")
    assert ready.media.text is None and ready.media.close_keyboard
    for n in (3, 4):
        _, data = _step(_local, _message(n, photo=PHOTO), data)
    fourth = _local(_message(5, photo=PHOTO), data)
    assert isinstance(fourth, Ready) and len(fourth.media.file_ids) == 4


def test_a_photo_too_small_is_not_counted() -> None:
    _, data = _step(_local, _message(1, photo=PHOTO), {})
    small = _local(_message(2, photo=(40, 40, 10)), data)
    assert isinstance(small, Answer) and small.key == "bot-input-too-small"
    assert not small.remember
    done = _local(_message(3, text="готово"), data)
    assert isinstance(done, Answer) and done.key == "bot-several-need-more"


async def test_the_bot_counts_the_photos_asks_for_the_sentence_and_queues_the_model(
    start_bot: StartBot, tg, photo: bytes, photo2: bytes
) -> None:
    app = await start_bot(FAL_KEY="fal-test-key")
    user = tg.user(8401)
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    await user.press(menu, text="🔗 Объединить")
    prompt = await user.wait_for_text("как их объединить")
    assert "от 2 до 4 фотографий" in prompt.text
    assert "🤖 Модель: fal-ai/flux-pro/kontext/max/multi" in prompt.text
    sent = [await user.send_photo(photo)]
    await user.wait_for_text("Пришлите ещё хотя бы одно")
    sent.append(await user.send_photo(photo2))
    await user.wait_for_text("Фото: 2 из 4")
    assert await user.reply_keyboard() == ["➕ Добавить", "✅ Готово"]
    await user.send_text("✅ Готово")
    await user.wait_for_text("Фотографии есть! Теперь одной фразой")
    sent.append(await user.send_photo(photo))
    await user.wait_for_text("Фото: 3 из 4")
    assert await app.operations() == []  # nothing charged while the photos come
    await user.send_text("астронавт и учёный за одним столом")
    queued = await user.wait_for_text("В очереди")
    assert "объединяю фотографии" in queued.text
    assert await user.reply_keyboard() == []  # "queued" took the keyboard away
    [operation] = await app.operations()
    assert operation.type == "merge"
    assert operation.input_ref["text"] == "астронавт и учёный за одним столом"
    assert operation.input_ref["file_ids"] == [m.file_id for m in sent]
    assert operation.input_ref["model"]["model_id"] == "fal-ai/flux-pro/kontext/max/multi"
    # A fifth photo of the next request: four are taken, the fifth is said not to be.
    for _ in range(4):
        await user.send_photo(photo)
    await user.wait_for_text("Теперь одной фразой")
    await user.send_photo(photo2)
    fifth = await user.wait_for_text("Это фото не добавлено")
    assert "не больше 4" in fifth.text
    assert "ничего не списано" in fifth.text
    assert len(await app.operations()) == 1


def test_an_album_photo_handled_after_done_is_said_not_to_be_added() -> None:
    """Album updates may be handled in any order (on different replicas): one that comes
    after the "✅ Готово" that completed the request is refused (not charged), not the start
    of a new request."""
    data: dict = {}
    for n in (1, 2):
        _, data = _step(_local, _message(n, photo=PHOTO, group="g"), data)
    ready = _local(_message(4, text="✅ Готово"), data)
    assert isinstance(ready, Ready) and len(ready.media.file_ids) == 2
    late = _local(_message(3, photo=PHOTO, group="g"), {**data, **ready.remember})
    assert isinstance(late, Answer) and late.key == "bot-several-too-many"
    assert not (late.remember or {}).get("photos")
