"""Russian by default; English texts for users whose Telegram language is English."""

from __future__ import annotations

from tests.bot.conftest import StartBot


async def test_an_english_user_gets_english_texts_and_buttons(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    app = await start_bot(FREE_OPERATIONS_COUNT=1)
    user = tg.user(9201, first_name="Ann", language="en-GB")
    await user.send_text("/start")
    menu = await user.wait_for_text("Hi, Ann!")
    assert "Free operations: 1 of 1" in menu.text
    assert {"✨ Retouch", "⬆️ Upscale", "💰 Pay / Balance"} <= set(menu.button_texts)
    await user.press(menu, text="✨ Retouch")
    await user.wait_for_text("Send a portrait")
    await user.send_text("hello")
    await user.wait_for_text("This needs a photo")
    await user.send_photo(photo)
    queued = await user.wait_for_text("Queued")
    assert "0 of 1 left" in queued.text
    await user.send_photo(photo)
    refused = await user.wait_for_text("free operations are used up")
    assert "💳 Top up" in refused.button_texts
    [operation] = await app.operations()
    assert operation.input_ref["language"] == "en"
    account = await app.user(9201)
    assert account is not None and account.language == "en"


async def test_other_languages_get_russian(start_bot: StartBot, tg) -> None:
    await start_bot()
    user = tg.user(9202, language="de")
    await user.send_text("/start")
    await user.wait_for_text("Привет")


async def test_a_name_with_html_is_shown_as_text(start_bot: StartBot, tg) -> None:
    await start_bot()
    user = tg.user(9203, first_name="<b>Bob</b> & Co")
    await user.send_text("/start")
    greeting = await user.wait_for_text("Привет")
    assert "<b>Bob</b> & Co" in greeting.text
