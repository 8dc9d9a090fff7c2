"""The browser chat page against the Telegram emulator, with the test playing the bot over the
real Bot API: what the bot sends, edits and deletes shows up in the page; what a person does
in the page (text, buttons, photos, albums, files) reaches the bot as Telegram updates."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sandbox import chatpage
from sandbox._common import ServerHandle
from sandbox.telegram import create_app

pytestmark = pytest.mark.browser

TOKEN = "777001:chat-page-test-token"
USER_ID = 4242
WAIT = 30_000  # ms: generous, the conditions are what the test waits for


class FakeBot:
    """The bot's side of the Bot API, by hand: getUpdates with an offset, and calls."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.offset = 0
        self.http = aiohttp.ClientSession()

    async def call(self, method: str, **params: Any) -> Any:
        data = {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in params.items()}
        async with self.http.post(f"{self.base}/bot{TOKEN}/{method}", data=data) as resp:
            body = await resp.json()
        assert body["ok"], body
        return body["result"]

    async def upload(
        self, method: str, field: str, data: bytes, file_name: str, **params: Any
    ) -> Any:
        form = aiohttp.FormData()
        for key, value in params.items():
            form.add_field(
                key, json.dumps(value) if isinstance(value, (dict, list)) else str(value)
            )
        form.add_field(field, data, filename=file_name)
        async with self.http.post(f"{self.base}/bot{TOKEN}/{method}", data=form) as resp:
            body = await resp.json()
        assert body["ok"], body
        return body["result"]

    async def wait_update(
        self, predicate: Callable[[dict], bool], within: float = 30.0
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while loop.time() < deadline:
            updates = await self.call("getUpdates", offset=self.offset, timeout=2)
            for update in updates:
                self.offset = update["update_id"] + 1
                if predicate(update):
                    return update
        raise AssertionError("the bot got no matching update")

    async def wait_updates(self, count: int, predicate: Callable[[dict], bool]) -> list[dict]:
        found = []
        while len(found) < count:
            found.append(await self.wait_update(predicate))
        return found

    async def close(self) -> None:
        await self.http.close()


@pytest.fixture
async def server() -> AsyncIterator[ServerHandle]:
    app = create_app()
    chatpage.attach(
        app,
        user_id=USER_ID,
        first_name="Тест",
        language="ru",
        info={"yookassa": "emulator", "fal": "fake"},
    )
    async with ServerHandle(app) as handle:
        yield handle


@pytest.fixture
async def bot(server: ServerHandle) -> AsyncIterator[FakeBot]:
    fake = FakeBot(server.url)
    await fake.call("getMe")  # binds the token: the page's user talks to this bot
    yield fake
    await fake.close()


def _message(update: dict) -> dict:
    return update.get("message") or {}


async def test_text_and_buttons_round_trip(
    server: ServerHandle, bot: FakeBot, browser: Any
) -> None:
    page = await browser.new_page()
    await page.goto(f"{server.url}/chat")
    await page.get_by_test_id("start").click()
    start = await bot.wait_update(lambda u: _message(u).get("text") == "/start")
    assert _message(start)["from"]["id"] == USER_ID
    assert _message(start)["from"]["language_code"] == "ru"
    assert _message(start)["entities"][0]["type"] == "bot_command"

    sent = await bot.call(
        "sendMessage",
        chat_id=USER_ID,
        parse_mode="HTML",
        text="Привет, <b>Тест</b>! Баланс: 0 ₽",
        reply_markup={
            "inline_keyboard": [
                [{"text": "⬆️ Улучшить", "callback_data": "menu:upscale"}],
                [{"text": "💳 Перейти к оплате", "url": f"{server.url}/chat?pay=1"}],
            ]
        },
    )
    bubble = page.locator(f'[data-testid=message][data-message-id="{sent["message_id"]}"]')
    await bubble.wait_for(timeout=WAIT)
    assert await bubble.get_attribute("data-from") == "bot"
    assert await bubble.locator("b").inner_text() == "Тест"
    link = bubble.get_by_test_id("inline-button").filter(has_text="Перейти к оплате")
    assert await link.get_attribute("target") == "_blank"
    assert await link.get_attribute("href") == f"{server.url}/chat?pay=1"

    await bubble.get_by_test_id("inline-button").filter(has_text="Улучшить").click()
    pressed = await bot.wait_update(lambda u: "callback_query" in u)
    query = pressed["callback_query"]
    assert query["data"] == "menu:upscale"
    assert query["message"]["message_id"] == sent["message_id"]
    await bot.call("answerCallbackQuery", callback_query_id=query["id"], text="Режим выбран")
    await page.get_by_test_id("toast").filter(has_text="Режим выбран").wait_for(timeout=WAIT)

    await bot.call(
        "editMessageText", chat_id=USER_ID, message_id=sent["message_id"], text="⏳ В очереди"
    )
    await bubble.filter(has_text="В очереди").wait_for(timeout=WAIT)
    assert "изменено" in await bubble.inner_text()
    assert await bubble.get_by_test_id("inline-button").count() == 0

    await bot.call("deleteMessage", chat_id=USER_ID, message_id=sent["message_id"])
    await bubble.wait_for(state="detached", timeout=WAIT)

    await page.get_by_test_id("composer-text").fill("ч/б, яркость +20")
    await page.get_by_test_id("composer-text").press("Enter")
    typed = await bot.wait_update(lambda u: "text" in _message(u))
    assert _message(typed)["text"] == "ч/б, яркость +20"
    mid = _message(typed)["message_id"]
    mine = page.locator(f'[data-testid=message][data-message-id="{mid}"]')
    await mine.wait_for(timeout=WAIT)
    assert await mine.get_attribute("data-from") == "user"


async def test_photos_albums_and_documents(
    server: ServerHandle,
    bot: FakeBot,
    browser: Any,
    photo_path: Path,
    photo2_path: Path,
    png_path: Path,
) -> None:
    page = await browser.new_page()
    await page.goto(f"{server.url}/chat")

    # one photo with a caption
    await page.get_by_test_id("file-input").set_input_files(str(photo_path))
    await page.get_by_test_id("composer-text").fill("подпись")
    await page.get_by_test_id("send").click()
    single = _message(await bot.wait_update(lambda u: "photo" in _message(u)))
    assert single["caption"] == "подпись"
    assert "media_group_id" not in single
    biggest = max(single["photo"], key=lambda p: p["width"])
    assert (biggest["width"], biggest["height"]) == (512, 512)

    # two photos: one album
    await page.get_by_test_id("file-input").set_input_files([str(photo_path), str(photo2_path)])
    await page.get_by_test_id("attachment").nth(1).wait_for(timeout=WAIT)
    await page.get_by_test_id("send").click()
    album = [_message(u) for u in await bot.wait_updates(2, lambda u: "photo" in _message(u))]
    assert album[0]["media_group_id"] == album[1]["media_group_id"]
    assert album[0]["message_id"] < album[1]["message_id"]

    # an image as a file (uncompressed): a document with the original bytes
    await page.get_by_test_id("file-input").set_input_files(str(png_path))
    await page.get_by_test_id("as-document").check()
    await page.get_by_test_id("send").click()
    doc = _message(await bot.wait_update(lambda u: "document" in _message(u)))["document"]
    assert doc["file_name"] == "chelsea.png"
    assert doc["mime_type"] == "image/png"
    file = await bot.call("getFile", file_id=doc["file_id"])
    async with bot.http.get(f"{server.url}/file/bot{TOKEN}/{file['file_path']}") as resp:
        assert await resp.read() == png_path.read_bytes()

    # what the bot sends back: a photo and a document, shown and downloadable
    result = await bot.upload(
        "sendPhoto",
        "photo",
        photo2_path.read_bytes(),
        "result.jpg",
        chat_id=USER_ID,
        caption="✅ Готово",
    )
    sent_doc = await bot.upload(
        "sendDocument", "document", png_path.read_bytes(), "result.png", chat_id=USER_ID
    )
    img = page.locator(f'[data-message-id="{result["message_id"]}"] [data-testid=photo]')
    await img.wait_for(timeout=WAIT)
    await page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=await img.element_handle(), timeout=WAIT
    )
    card = page.locator(f'[data-message-id="{sent_doc["message_id"]}"] [data-testid=document]')
    await card.wait_for(timeout=WAIT)
    assert await card.get_attribute("download") == "result.png"
    async with bot.http.get(server.url + await card.get_attribute("href")) as resp:
        assert await resp.read() == png_path.read_bytes()

    # the user's own album is drawn as one group
    grouped = page.locator(f'[data-group="{album[0]["media_group_id"]}"]')
    assert await grouped.count() == 2
    assert "album-cont" in await grouped.nth(1).get_attribute("class")


async def test_page_follows_another_user_from_its_url(
    server: ServerHandle, bot: FakeBot, browser: Any
) -> None:
    page = await browser.new_page()
    await page.goto(f"{server.url}/chat?user=5151&name=Bob&lang=en")
    assert "Press /start" in await page.locator("#empty-text").inner_text()
    await page.get_by_test_id("start").click()
    start = _message(await bot.wait_update(lambda u: _message(u).get("text") == "/start"))
    assert start["from"]["id"] == 5151
    assert start["from"]["first_name"] == "Bob"
    assert start["from"]["language_code"] == "en"


async def test_commands_menu_and_alerts(server: ServerHandle, bot: FakeBot, browser: Any) -> None:
    await bot.call(
        "setMyCommands",
        commands=[
            {"command": "start", "description": "Главное меню"},
            {"command": "balance", "description": "Баланс и пополнение"},
        ],
    )
    page = await browser.new_page()
    await page.goto(f"{server.url}/chat")
    await page.locator("#bot-status").filter(has_text="песочница").wait_for(timeout=WAIT)
    await page.locator("#commands-btn").click()
    await page.locator("#commands button").filter(has_text="/balance").click()
    sent = await bot.wait_update(lambda u: "message" in u)
    assert _message(sent)["text"] == "/balance"

    shown = await bot.call(
        "sendMessage",
        chat_id=USER_ID,
        text="Проверить",
        reply_markup={
            "inline_keyboard": [[{"text": "🔄 Проверить оплату", "callback_data": "check:1"}]]
        },
    )
    button = page.locator(f'[data-message-id="{shown["message_id"]}"] [data-testid=inline-button]')
    await button.click()
    query = (await bot.wait_update(lambda u: "callback_query" in u))["callback_query"]
    await bot.call(
        "answerCallbackQuery",
        callback_query_id=query["id"],
        text="⏳ Оплата ещё не поступила",
        show_alert=True,
    )
    alert = page.get_by_test_id("alert")
    await alert.filter(has_text="Оплата ещё не поступила").wait_for(timeout=WAIT)
    await page.locator("#modal-ok").click()
    await alert.wait_for(state="hidden", timeout=WAIT)


def stars_shown(page: Any, stars: int) -> Any:
    """The header's ⭐ balance once it reads ``stars``."""
    return page.locator(f'[data-testid=stars-balance][data-stars="{stars}"]')


async def test_a_stars_invoice_is_paid_on_its_card_and_the_balance_follows(
    server: ServerHandle, bot: FakeBot, browser: Any
) -> None:
    page = await browser.new_page()
    await page.goto(f"{server.url}/chat")
    await stars_shown(page, 1000).wait_for(timeout=WAIT)  # the emulator's default
    await page.get_by_test_id("start").click()
    await bot.wait_update(lambda u: _message(u).get("text") == "/start")

    # the sandbox gives the user Stars from the header
    await page.get_by_test_id("stars-balance").click()
    await page.get_by_test_id("stars-amount").fill("150")
    await page.get_by_test_id("stars-add").click()
    await stars_shown(page, 1150).wait_for(timeout=WAIT)
    async with bot.http.get(f"{server.url}/_emu/stars", params={"user_id": USER_ID}) as resp:
        assert (await resp.json())["stars"] == 1150

    sent = await bot.call(
        "sendInvoice",
        chat_id=USER_ID,
        title="Пополнение на 100 ₽",
        description="100 ⭐ — зачислю 100 ₽ на баланс.",
        payload="purchase:1",
        currency="XTR",
        prices=[{"label": "100 ₽ на баланс", "amount": 100}],
    )
    bubble = page.locator(f'[data-testid=message][data-message-id="{sent["message_id"]}"]')
    card = bubble.get_by_test_id("invoice")
    await card.wait_for(timeout=WAIT)
    assert await card.get_by_test_id("invoice-title").inner_text() == "Пополнение на 100 ₽"
    assert "зачислю 100 ₽" in await card.inner_text()
    assert await card.get_by_test_id("invoice-amount").inner_text() == "⭐ 100"
    pay = bubble.get_by_test_id("pay")
    assert await pay.inner_text() == "Оплатить ⭐100"

    # the bot refuses the pre-checkout: its reason on the card, nothing taken
    await pay.click()
    asked = (await bot.wait_update(lambda u: "pre_checkout_query" in u))["pre_checkout_query"]
    assert (asked["from"]["id"], asked["invoice_payload"]) == (USER_ID, "purchase:1")
    assert (asked["currency"], asked["total_amount"]) == ("XTR", 100)
    await bot.call(
        "answerPreCheckoutQuery",
        pre_checkout_query_id=asked["id"],
        ok=False,
        error_message="Этот счёт устарел",
    )
    status = card.get_by_test_id("invoice-status")
    await status.filter(has_text="Этот счёт устарел").wait_for(timeout=WAIT)
    assert await pay.is_enabled()
    assert await stars_shown(page, 1150).count() == 1

    # approved: the Stars are taken, the bot gets successful_payment, the card says paid
    await pay.click()
    asked = (await bot.wait_update(lambda u: "pre_checkout_query" in u))["pre_checkout_query"]
    await bot.call("answerPreCheckoutQuery", pre_checkout_query_id=asked["id"], ok=True)
    paid = _message(await bot.wait_update(lambda u: "successful_payment" in _message(u)))
    charge = paid["successful_payment"]["telegram_payment_charge_id"]
    assert paid["successful_payment"]["invoice_payload"] == "purchase:1"
    await stars_shown(page, 1050).wait_for(timeout=WAIT)
    await status.filter(has_text="Оплачено").wait_for(timeout=WAIT)
    assert await pay.is_disabled()
    service = page.get_by_test_id("service")
    await service.filter(has_text="Вы оплатили ⭐100").wait_for(timeout=WAIT)

    # the bot refunds: the Stars come back, the card and the chat say so
    await bot.call("refundStarPayment", user_id=USER_ID, telegram_payment_charge_id=charge)
    await stars_shown(page, 1150).wait_for(timeout=WAIT)
    await status.filter(has_text="Звёзды возвращены").wait_for(timeout=WAIT)
    await service.filter(has_text="Возвращено ⭐100").wait_for(timeout=WAIT)
    assert await pay.is_disabled()
    back = _message(await bot.wait_update(lambda u: "refunded_payment" in _message(u)))
    assert back["refunded_payment"]["telegram_payment_charge_id"] == charge

    # more than the user has: Telegram refuses before asking the bot
    dear = await bot.call(
        "sendInvoice",
        chat_id=USER_ID,
        title="Пополнение на 5000 ₽",
        description="5000 ⭐",
        payload="purchase:2",
        currency="XTR",
        prices=[{"label": "5000 ₽", "amount": 5000}],
    )
    dear_bubble = page.locator(f'[data-testid=message][data-message-id="{dear["message_id"]}"]')
    await dear_bubble.get_by_test_id("pay").click()
    await (
        dear_bubble.get_by_test_id("invoice-status")
        .filter(has_text="Не хватает звёзд: на счету ⭐1150")
        .wait_for(timeout=WAIT)
    )
    assert await bot.call("getUpdates", offset=bot.offset, timeout=0) == []
