"""A user who floods the bot is slowed down: one polite answer, then silence."""

from __future__ import annotations

import logging

import pytest

from tests.bot.conftest import StartBot, wait_until


async def test_a_flooding_user_gets_one_polite_answer_and_the_rest_is_dropped(
    start_bot: StartBot, tg, caplog: pytest.LogCaptureFixture
) -> None:
    # Three updates at once, then (practically) no refill during the test.
    await start_bot(THROTTLE_BURST=3, THROTTLE_RATE_PER_SECOND=0.001)
    caplog.set_level(logging.INFO, logger="bot.middlewares")
    user = tg.user(9101)
    for _ in range(10):
        await user.send_text("/balance")

    async def all_seen() -> bool:
        return sum("throttled user 9101" in r.getMessage() for r in caplog.records) == 7

    await wait_until(all_seen)
    messages = await user.bot_messages()
    assert sum("Баланс" in m.text for m in messages) == 3
    assert sum("Не так быстро" in m.text for m in messages) == 1
    assert len(messages) == 4

    # Another user is not affected.
    other = tg.user(9102)
    await other.send_text("/balance")
    await other.wait_for_text("Баланс")


async def test_a_throttled_button_press_is_answered_without_text_after_the_first(
    start_bot: StartBot, tg, caplog: pytest.LogCaptureFixture
) -> None:
    await start_bot(THROTTLE_BURST=2, THROTTLE_RATE_PER_SECOND=0.001)
    caplog.set_level(logging.INFO, logger="bot.middlewares")
    user = tg.user(9103)
    await user.send_text("/help")
    help_message = await user.wait_for_text("Что я умею")
    first = await user.press(help_message, text="Меню")  # the second token
    await user.wait_for_text("Что сделаем?")
    refused = [await user.press(help_message, text="Меню") for _ in range(3)]
    answers = [await user.wait_for_answer(q) for q in refused]
    # Updates are handled concurrently (as polling does): whichever is handled first is
    # warned, once; the others are answered silently.
    texts = [a.get("text") or "" for a in answers]
    assert sum("Не так быстро" in text for text in texts) == 1, texts
    assert sum(not text for text in texts) == 2, texts
    assert first.id not in {q.id for q in refused}


async def test_an_album_takes_one_token_however_many_photos_it_has(
    start_bot: StartBot, tg, photo: bytes, photo2: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """Telegram delivers an album as one update per photo; a user who sends one album is
    not flooding. /start and the button take two tokens, the album the third."""
    app = await start_bot(THROTTLE_BURST=3, THROTTLE_RATE_PER_SECOND=0.001)
    caplog.set_level(logging.INFO, logger="bot.middlewares")
    user = tg.user(9104)
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    await user.press(menu, text="🔗 Объединить")
    await user.wait_for_text("от 2 до 4 фотографий")
    before = user.mark  # the answer may come between the album's photos
    await user.send_album([photo, photo2, photo, photo2, photo])
    await user.wait_for_text("В очереди", since=before)
    assert len(await app.operations()) == 1
    assert not any("throttled user 9104" in r.getMessage() for r in caplog.records)
    # The bucket is empty now: the next request is refused politely, once.
    await user.send_text("/balance")
    await user.wait_for_text("Не так быстро")
