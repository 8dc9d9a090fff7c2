"""A second sandbox run finds the first one's chat and payments: the emulators' state is saved
to the state directory and restored into fresh emulators."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import aiohttp

from sandbox._common import ServerHandle
from sandbox.snapshot import TelegramSnapshot, YooKassaSnapshot
from sandbox.telegram import EMU_KEY as TG_KEY
from sandbox.telegram import create_app as create_telegram
from sandbox.telegram_client import TelegramEmulatorClient
from sandbox.yookassa import EMU_KEY as YK_KEY
from sandbox.yookassa import create_app as create_yookassa

TOKEN = "123456:sandbox-token-for-the-local-emulator"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


async def _bot_call(http: aiohttp.ClientSession, base: str, method: str, **params):
    data = {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in params.items()}
    async with http.post(f"{base}/bot{TOKEN}/{method}", data=data) as resp:
        body = await resp.json()
    assert body["ok"], body
    return body["result"]


async def test_chat_files_and_message_ids_survive_a_restart(tmp_path: Path) -> None:
    files = tmp_path / "files"
    state = tmp_path / "telegram.json"
    photo = (FIXTURES / "astronaut.jpg").read_bytes()

    first = create_telegram(files_dir=files)
    async with (
        ServerHandle(first) as server,
        aiohttp.ClientSession() as http,
        TelegramEmulatorClient(server.url) as tg,
    ):
        await _bot_call(http, server.url, "getMe")
        user = tg.user(1001, first_name="Гость")
        await user.send_text("/start")
        sent = await user.send_photo(photo, caption="до")
        updates = await _bot_call(http, server.url, "getUpdates", timeout=0)
        await _bot_call(http, server.url, "getUpdates", offset=updates[-1]["update_id"] + 1)
        reply = await _bot_call(
            http,
            server.url,
            "sendMessage",
            chat_id=1001,
            text="Меню",
            reply_markup={"inline_keyboard": [[{"text": "⬆️ Улучшить", "callback_data": "u"}]]},
        )
        await _bot_call(
            http,
            server.url,
            "editMessageText",
            chat_id=1001,
            message_id=reply["message_id"],
            text="Меню (изменено)",
        )
        await user.send_text("пока бот спал")  # not fetched by the bot: pending
        saved_file_id = sent.photo[-1]["file_id"]
        TelegramSnapshot(first[TG_KEY], state).save()
        await server.stop()

    second = create_telegram(files_dir=files)
    assert TelegramSnapshot(second[TG_KEY], state).load() is True
    async with (
        ServerHandle(second) as server,
        aiohttp.ClientSession() as http,
        TelegramEmulatorClient(server.url) as tg,
    ):
        user = tg.user(1001, first_name="Гость")
        texts = [m.text for m in await user.messages()]
        assert texts == ["/start", "до", "Меню (изменено)", "пока бот спал"]
        edited = (await user.bot_messages())[0]
        assert edited.edited and edited.button_texts == []
        # the photo is still downloadable, by the user's page and by the bot
        assert await tg.download(saved_file_id) == photo
        file = await _bot_call(http, server.url, "getFile", file_id=saved_file_id)
        async with http.get(f"{server.url}/file/bot{TOKEN}/{file['file_path']}") as resp:
            assert resp.status == 200 and len(await resp.read()) == file["file_size"]
        # the update sent while the bot was away is delivered now
        pending = await _bot_call(http, server.url, "getUpdates", timeout=0)
        assert [u["message"]["text"] for u in pending] == ["пока бот спал"]
        # message ids go on from where they were: "chat:message" keys stay unique
        newer = await user.send_text("/balance")
        assert newer.message_id == 5
        assert pending[0]["update_id"] < newer.update_id
        # the bot's new file gets a new path, not one of the old ones
        again = await user.send_photo(photo)
        assert again.photo[-1]["file_id"] != saved_file_id


async def test_broken_state_file_is_moved_aside(tmp_path: Path) -> None:
    state = tmp_path / "telegram.json"
    state.write_text("{not json")
    app = create_telegram()
    assert TelegramSnapshot(app[TG_KEY], state).load() is False
    assert not state.exists()
    assert (tmp_path / "telegram.broken.json").read_text() == "{not json"


async def test_payments_and_idempotence_keys_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "yookassa.json"
    auth = "Basic " + base64.b64encode(b"100500:test_key_for_restart").decode()
    body = {
        "amount": {"value": "100.00", "currency": "RUB"},
        "capture": True,
        "confirmation": {"type": "redirect", "return_url": "http://127.0.0.1/chat"},
        "metadata": {"payment_row_id": "7"},
        "description": "Пополнение",
    }
    headers = {"Authorization": auth, "Idempotence-Key": "topup-7"}

    first = create_yookassa(shop_id="100500", secret_key="test_key_for_restart")
    async with ServerHandle(first) as server, aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/v3/payments", json=body, headers=headers) as resp:
            assert resp.status == 200
            created = await resp.json()
        YooKassaSnapshot(first[YK_KEY], state).save()

    second = create_yookassa(shop_id="100500", secret_key="test_key_for_restart")
    assert YooKassaSnapshot(second[YK_KEY], state).load() is True
    async with ServerHandle(second) as server, aiohttp.ClientSession() as http:
        async with http.get(
            f"{server.url}/v3/payments/{created['id']}", headers={"Authorization": auth}
        ) as resp:
            assert resp.status == 200
            fetched = await resp.json()
        assert fetched["status"] == "pending"
        assert fetched["metadata"] == {"payment_row_id": "7"}
        # the same idempotence key still answers with the same payment, not a second one
        async with http.post(f"{server.url}/v3/payments", json=body, headers=headers) as resp:
            assert (await resp.json())["id"] == created["id"]
        # its checkout page still works
        async with http.get(f"{server.url}/checkout/{created['id']}") as resp:
            assert resp.status == 200
            assert "Оплатить" in await resp.text()


async def _paid(http: aiohttp.ClientSession, base: str, user, message_id: int, offset: int):  # type: ignore[no-untyped-def]
    """The user pays an invoice; the bot (here by hand) approves its pre-checkout."""
    paying = asyncio.create_task(user.pay(message_id))
    while True:
        updates = await _bot_call(http, base, "getUpdates", offset=offset, timeout=1)
        if updates:
            offset = updates[-1]["update_id"] + 1
        asked = [u["pre_checkout_query"] for u in updates if "pre_checkout_query" in u]
        if asked:
            break
    await _bot_call(
        http, base, "answerPreCheckoutQuery", pre_checkout_query_id=asked[0]["id"], ok=True
    )
    paid = await paying
    assert paid["ok"], paid
    return paid, offset


async def test_stars_invoices_and_charges_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "telegram.json"
    invoice = {
        "chat_id": 1001,
        "title": "Пополнение",
        "description": "⭐ → ₽",
        "currency": "XTR",
    }

    first = create_telegram()
    async with (
        ServerHandle(first) as server,
        aiohttp.ClientSession() as http,
        TelegramEmulatorClient(server.url) as tg,
    ):
        await _bot_call(http, server.url, "getMe")
        user = tg.user(1001, first_name="Гость")
        await user.send_text("/start")
        await user.set_stars(300)
        old = await _bot_call(
            http,
            server.url,
            "sendInvoice",
            payload="a",
            prices=[{"label": "a", "amount": 50}],
            **invoice,
        )
        later = await _bot_call(
            http,
            server.url,
            "sendInvoice",
            payload="b",
            prices=[{"label": "b", "amount": 70}],
            **invoice,
        )
        paid, _ = await _paid(http, server.url, user, old["message_id"], 0)
        TelegramSnapshot(first[TG_KEY], state).save()
        await server.stop()

    second = create_telegram()
    assert TelegramSnapshot(second[TG_KEY], state).load() is True
    async with (
        ServerHandle(second) as server,
        aiohttp.ClientSession() as http,
        TelegramEmulatorClient(server.url) as tg,
    ):
        user = tg.user(1001, first_name="Гость")
        assert await user.stars() == 250
        async with http.get(f"{server.url}/_emu/chats/1001") as resp:
            shown = {m["message_id"]: m for m in (await resp.json())["messages"]}
        assert shown[old["message_id"]]["invoice_state"] == {
            "charge_id": paid["charge_id"],
            "refunded": False,
        }
        assert "invoice_state" not in shown[later["message_id"]]
        # the invoice sent before the restart can still be paid, the old charge refunded once
        await _paid(http, server.url, user, later["message_id"], 0)
        assert await user.stars() == 180
        refund = {"user_id": 1001, "telegram_payment_charge_id": paid["charge_id"]}
        assert await _bot_call(http, server.url, "refundStarPayment", **refund) is True
        assert await user.stars() == 230
        data = {k: str(v) for k, v in refund.items()}
        async with http.post(f"{server.url}/bot{TOKEN}/refundStarPayment", data=data) as resp:
            assert "CHARGE_ALREADY_REFUNDED" in (await resp.json())["description"]
