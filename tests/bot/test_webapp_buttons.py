"""With WEBAPP_URL the bot opens the Mini App: the menu button (setChatMenuButton at start)
and a first button in /balance, /plans and /history on the page of each; without it, none."""

from __future__ import annotations

from bot.app import set_commands
from tests.bot.conftest import StartBot

URL = "https://bot.example.com/app/"


async def test_balance_plans_and_history_open_the_mini_app(start_bot: StartBot, tg) -> None:
    await start_bot(WEBAPP_URL=URL)
    user = tg.user(17501, language="en")
    for command, wait, page in (
        ("/balance", "Balance", "balance"),
        ("/plans", "plan", "plans"),
        ("/history", "History", "history"),
    ):
        await user.send_text(command)
        message = await user.wait_for_text(wait)
        first = message.buttons[0][0]
        assert first.text == "📱 Open the app", command
        assert first.raw["web_app"] == {"url": f"{URL}?page={page}"}, command


async def test_no_webapp_url_no_button(start_bot: StartBot, tg) -> None:
    await start_bot()
    user = tg.user(17502)
    await user.send_text("/balance")
    message = await user.wait_for_text("Баланс")
    assert all("web_app" not in b.raw for row in message.buttons for b in row)


async def test_the_menu_button_opens_the_mini_app(start_bot: StartBot, tg) -> None:
    app = await start_bot(WEBAPP_URL=URL)
    await set_commands(app.bot, app.settings.WEBAPP_URL)
    button = await app.bot.get_chat_menu_button()
    assert button.type == "web_app"
    assert (button.text, button.web_app.url) == ("Кабинет", URL)


async def test_start_gives_each_user_the_menu_button_in_their_language(
    start_bot: StartBot, tg
) -> None:
    app = await start_bot(WEBAPP_URL=URL)
    await set_commands(app.bot, app.settings.WEBAPP_URL)
    english = tg.user(17503, language="en")
    await english.send_text("/start")
    await english.wait_for_text("Hi")
    button = await app.bot.get_chat_menu_button(chat_id=17503)
    assert (button.type, button.text, button.web_app.url) == ("web_app", "Account", URL)

    russian = tg.user(17504)
    await russian.send_text("/start")
    await russian.wait_for_text("Привет")
    button = await app.bot.get_chat_menu_button(chat_id=17504)
    assert (button.type, button.text) == ("web_app", "Кабинет")  # the bot's default

    # the English user's Telegram now speaks Russian: back to the bot's default
    again = tg.user(17503, language="ru")
    await again.send_text("/start")
    await again.wait_for_text("Привет")
    button = await app.bot.get_chat_menu_button(chat_id=17503)
    assert (button.type, button.text) == ("web_app", "Кабинет")


async def test_without_webapp_url_start_leaves_the_menu_button_alone(
    start_bot: StartBot, tg
) -> None:
    app = await start_bot()
    user = tg.user(17505, language="en")
    await user.send_text("/start")
    await user.wait_for_text("Hi")
    button = await app.bot.get_chat_menu_button(chat_id=17505)
    assert button.type == "commands"
