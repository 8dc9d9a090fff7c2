"""The Telegram emulator's Stars payments, driven by a plain aiogram Bot as the Bot API
documents them: sendInvoice (XTR, no provider token, one price), the pre_checkout_query
update and answerPreCheckoutQuery, the successful_payment message, each user's ⭐ balance,
refundStarPayment (CHARGE_ALREADY_REFUNDED the second time) and refunded_payment, and an
invoice link (createInvoiceLink) paid through the control API."""

from __future__ import annotations

import asyncio

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import LabeledPrice, Update

from sandbox.telegram_client import EmulatorError


async def _next_update(bot: Bot, offset: int, kind: str) -> Update:
    while True:
        for update in await bot.get_updates(offset=offset, timeout=1):
            offset = update.update_id + 1
            if getattr(update, kind) is not None:
                return update


async def _invoice(bot: Bot, chat_id: int, stars: int = 50, payload: str = "order-1"):  # type: ignore[no-untyped-def]
    return await bot.send_invoice(
        chat_id=chat_id,
        title="50 ⭐ pack",
        description="Top-up",
        payload=payload,
        currency="XTR",
        prices=[LabeledPrice(label="pack", amount=stars)],
    )


async def test_an_invoice_paid_with_stars_and_refunded_once(bot: Bot, tg) -> None:
    user = tg.user(2001)
    await user.send_text("/start")
    [start] = await bot.get_updates()
    invoice = await _invoice(bot, 2001)
    assert invoice.invoice is not None
    assert (invoice.invoice.currency, invoice.invoice.total_amount) == ("XTR", 50)
    assert await user.stars() == 1000

    paying = asyncio.create_task(user.pay(invoice.message_id))
    query = (await _next_update(bot, start.update_id + 1, "pre_checkout_query")).pre_checkout_query
    assert query is not None and query.from_user.id == 2001
    assert (query.currency, query.total_amount, query.invoice_payload) == ("XTR", 50, "order-1")
    assert await bot.answer_pre_checkout_query(query.id, ok=True)
    paid = await paying
    assert paid["ok"] and await user.stars() == 950

    update = await _payment_update(bot, start.update_id + 1)
    success = update.message.successful_payment  # type: ignore[union-attr]
    assert success is not None and success.telegram_payment_charge_id == paid["charge_id"]
    assert (success.currency, success.total_amount, success.invoice_payload) == (
        "XTR",
        50,
        "order-1",
    )
    with pytest.raises(TelegramBadRequest, match="QUERY_ID_INVALID"):
        await bot.answer_pre_checkout_query(query.id, ok=True)  # answered already

    assert await bot.refund_star_payment(2001, paid["charge_id"])
    assert await user.stars() == 1000
    with pytest.raises(TelegramBadRequest, match="CHARGE_ALREADY_REFUNDED"):
        await bot.refund_star_payment(2001, paid["charge_id"])
    with pytest.raises(TelegramBadRequest, match="CHARGE_NOT_FOUND"):
        await bot.refund_star_payment(2001, "stxnothing")
    assert await user.stars() == 1000
    refunded = await _next_update(bot, update.update_id + 1, "message")
    assert refunded.message is not None and refunded.message.refunded_payment is not None
    assert refunded.message.refunded_payment.telegram_payment_charge_id == paid["charge_id"]


async def _payment_update(bot: Bot, offset: int) -> Update:
    while True:
        update = await _next_update(bot, offset, "message")
        if update.message is not None and update.message.successful_payment is not None:
            return update
        offset = update.update_id + 1


async def test_a_refused_pre_checkout_charges_nothing_and_shows_the_reason(bot: Bot, tg) -> None:
    user = tg.user(2002)
    await user.send_text("/start")
    [start] = await bot.get_updates()
    invoice = await _invoice(bot, 2002)
    paying = asyncio.create_task(user.pay(invoice.message_id))
    query = (await _next_update(bot, start.update_id + 1, "pre_checkout_query")).pre_checkout_query
    assert query is not None
    with pytest.raises(TelegramBadRequest, match="error_message"):
        await bot.answer_pre_checkout_query(query.id, ok=False)
    assert await bot.answer_pre_checkout_query(query.id, ok=False, error_message="Out of date")
    assert await paying == {"ok": False, "error_message": "Out of date"}
    assert await user.stars() == 1000

    await user.set_stars(10)
    poor = await user.pay(invoice.message_id)
    assert not poor["ok"] and poor["error"] == "not enough stars"


async def test_stars_invoices_are_checked_like_the_bot_api(bot: Bot, tg) -> None:
    await tg.user(2003).send_text("/start")
    with pytest.raises(TelegramBadRequest, match="PROVIDER_TOKEN_INVALID"):
        await bot.send_invoice(
            2003, "t", "d", "p", "XTR", [LabeledPrice(label="a", amount=5)], provider_token="x"
        )
    with pytest.raises(TelegramBadRequest, match="exactly one price"):
        await bot.send_invoice(
            2003,
            "t",
            "d",
            "p",
            "XTR",
            [LabeledPrice(label="a", amount=5), LabeledPrice(label="b", amount=5)],
        )
    with pytest.raises(TelegramBadRequest, match="CURRENCY_INVALID"):
        await bot.send_invoice(2003, "t", "d", "p", "RUB", [LabeledPrice(label="a", amount=5)])
    with pytest.raises(TelegramBadRequest, match="INVOICE_PAYLOAD_INVALID"):
        await bot.send_invoice(
            2003, "t", "d", "x" * 129, "XTR", [LabeledPrice(label="a", amount=5)]
        )


async def test_an_invoice_link_is_checked_like_an_invoice_and_paid_in_the_payers_chat(
    bot: Bot, tg
) -> None:
    user = tg.user(2004)
    await user.send_text("/start")
    [start] = await bot.get_updates()
    with pytest.raises(TelegramBadRequest, match="CURRENCY_INVALID"):
        await bot.create_invoice_link("t", "d", "p", "RUB", [LabeledPrice(label="a", amount=5)])
    link = await bot.create_invoice_link(
        "50 ⭐ pack", "Top-up", "order-link", "XTR", [LabeledPrice(label="pack", amount=50)]
    )
    assert link.startswith("https://t.me/$")
    with pytest.raises(EmulatorError) as unknown:
        await user.pay_link(link + "x")
    assert unknown.value.status == 404

    paying = asyncio.create_task(user.pay_link(link))
    query = (await _next_update(bot, start.update_id + 1, "pre_checkout_query")).pre_checkout_query
    assert query is not None and query.invoice_payload == "order-link"
    assert await bot.answer_pre_checkout_query(query.id, ok=True)
    paid = await paying
    assert paid["ok"] and await user.stars() == 950
    update = await _payment_update(bot, start.update_id + 1)
    assert update.message is not None and update.message.chat.id == 2004
    success = update.message.successful_payment
    assert success is not None and success.invoice_payload == "order-link"
    assert success.telegram_payment_charge_id == paid["charge_id"]
