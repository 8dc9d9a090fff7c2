"""An album with more photos than the mode takes, or a caption the mode does not use: the
user is told what was used and what was not — once per album (its photos arrive as one
update each), and charged once. They were dropped without a word."""

from __future__ import annotations

from typing import Any

from bot.inputs import Answer, Assessment, Ignore, Ready, assess
from tests.bot.conftest import StartBot
from tests.bot.test_inputs import SETTINGS, _message
from texts.i18n import t


def _album(mode: str, count: int, caption: str | None = None) -> list[Assessment]:
    """Assess an album's photos in order, keeping the FSM data as the bot does."""
    data: dict[str, Any] = {}
    verdicts = []
    for i in range(count):
        message = _message(
            20 + i, photo=(500, 500, 10), caption=caption if i == 0 else None, group="album"
        )
        verdict = assess(mode, message, data, SETTINGS, "ru")
        verdicts.append(verdict)
        if isinstance(verdict, Ready):
            data.update(verdict.remember)
        elif isinstance(verdict, Answer) and verdict.remember:
            data.update(verdict.remember)
    return verdicts


def _keys(verdicts: list[Assessment]) -> list[str]:
    return [
        "ready" if isinstance(v, Ready) else "ignore" if isinstance(v, Ignore) else v.key
        for v in verdicts
    ]


def test_a_one_photo_mode_uses_one_photo_of_an_album_and_says_so_once() -> None:
    verdicts = _album("retouch", 4, caption="сделай ч/б")
    assert _keys(verdicts) == ["ready", "bot-album-extra", "ignore", "ignore"]
    ready, extra = verdicts[0], verdicts[1]
    assert isinstance(ready, Ready) and isinstance(extra, Answer)
    assert t(extra.key, "ru", **extra.args).startswith(
        "📎 В этом режиме одно фото за раз: из альбома взято одно, остальные не использованы"
    )
    # The caption asked for something else: the "queued" message says it was not used.
    assert ready.media.notes == (("bot-caption-unused", (("caption", "сделай ч/б"),)),)
    assert ready.media.input_ref("ru") == {
        "file_ids": ["photo20"],
        "text": None,
        "language": "ru",
    }


def test_a_two_photo_mode_uses_two_and_says_so_once() -> None:
    verdicts = _album("face_swap", 5, caption="<b>поменяй</b>")
    assert _keys(verdicts) == ["", "ready", "bot-album-extra", "ignore", "ignore"]
    ready, extra = verdicts[1], verdicts[2]
    assert isinstance(ready, Ready) and isinstance(extra, Answer)
    assert "из альбома взяты два" in t(extra.key, "ru", **extra.args)
    assert "I used two from the album" in t(extra.key, "en", **extra.args)
    # The caption was on the first photo; it is named when the pair is queued (escaped).
    [(key, args)] = ready.media.notes
    assert key == "bot-caption-unused" and dict(args)["caption"] == "&lt;b&gt;поменяй&lt;/b&gt;"


def test_a_photo_and_text_mode_keeps_the_first_photo_of_an_album_without_caption() -> None:
    verdicts = _album("edit", 3)
    assert _keys(verdicts) == ["bot-edit-need-instruction", "bot-album-extra", "ignore"]
    first = verdicts[0]
    assert isinstance(first, Answer) and first.remember is not None
    assert first.remember["photo"] == "photo20"
    # The text that follows goes to the album's first photo, not its last.
    data: dict[str, Any] = {}
    for verdict in verdicts:
        if isinstance(verdict, Answer) and verdict.remember:
            data.update(verdict.remember)
    ready = assess("edit", _message(30, text="ч/б"), data, SETTINGS, "ru")
    assert isinstance(ready, Ready) and ready.media.file_ids == ("photo20",)


def test_a_captioned_album_in_a_photo_and_text_mode_uses_the_caption() -> None:
    verdicts = _album("add_text", 3, caption="С днём рождения")
    assert _keys(verdicts) == ["ready", "bot-album-extra", "ignore"]
    ready = verdicts[0]
    assert isinstance(ready, Ready)
    assert ready.media.text == "С днём рождения" and ready.media.notes == ()


def test_an_album_in_the_text_mode_is_answered_once() -> None:
    assert _keys(_album("generate", 3)) == ["bot-generate-need-text", "ignore", "ignore"]


async def test_an_album_of_three_in_a_one_photo_mode_charges_once_and_says_so(
    start_bot: StartBot, tg, photo: bytes, photo2: bytes
) -> None:
    app = await start_bot()
    user = tg.user(8601)
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    await user.press(menu, text="⬆️ Улучшить")
    await user.wait_for_text("увеличу в 2 раза")
    before = user.mark
    first, _, _ = await user.send_album([photo, photo2, photo], caption="сделай ч/б")
    queued = await user.wait_for_text("В очереди", since=before)
    assert "Подпись «сделай ч/б» не использована" in queued.text
    await user.wait_for_text("из альбома взято одно", since=before)
    # Everything the bot does with the album is done once /balance is answered.
    await user.send_text("/balance")
    balance = await user.wait_for_text("Баланс")
    assert "3 из 4" in balance.text
    [operation] = await app.operations()
    assert operation.input_ref["file_ids"] == [first.file_id]
    said = [m for m in await user.bot_messages() if "из альбома" in m.text]
    assert len(said) == 1


async def test_an_album_of_five_in_merge_says_the_fifth_was_not_used(
    start_bot: StartBot, tg, photo: bytes, photo2: bytes
) -> None:
    app = await start_bot()
    user = tg.user(8602, language="en")
    await user.send_text("/start")
    menu = await user.wait_for_text("What shall we do?")
    await user.press(menu, text="🔗")
    await user.wait_for_text("2 to 4 photos")
    before = user.mark
    album = await user.send_album([photo, photo2, photo, photo2, photo])
    await user.wait_for_text("This photo was not added", since=before)
    await user.send_text("/balance")
    await user.wait_for_text("Balance")
    [operation] = await app.operations()  # the fourth completed it: no "Done" needed
    # The album's first four, in the order they were sent: a user's updates are handled in
    # the order they came.
    assert operation.input_ref["file_ids"] == [m.file_id for m in album][:4]
    said = [m for m in await user.bot_messages() if "at most 4 at a time" in m.text]
    assert len(said) == 1
