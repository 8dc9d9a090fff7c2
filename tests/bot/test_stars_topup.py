"""⭐ Stars top-ups over the Telegram emulator with the real dispatcher and PostgreSQL: the
menu's packs, the invoice (XTR, no provider token), the pre-checkout check, the credit once
per charge id (the same update twice; an old invoice paid again), the balance message."""

from __future__ import annotations

import logging

import pytest
from aiogram.types import LabeledPrice
from sqlalchemy import select

from billing.models import LedgerEntry, LedgerKind, PaymentProvider, PaymentStatus
from tests.bot.conftest import RunningBot, StartBot, wait_until

STARS = {"PAYMENT_METHODS": "stars", "STARS_PACKS": "50,100,250", "KOPECKS_PER_STAR": 120}


async def _invoice(user, pack: str = "⭐ 100"):  # type: ignore[no-untyped-def]
    await user.send_text("/balance")
    balance = await user.wait_for_text("Баланс:")
    await user.press(balance, text="Пополнить")
    menu = await user.wait_for_text("На сколько пополнить?")
    await user.press(menu, text=pack)
    return await user.wait_for(lambda m: m.from_bot and "invoice" in m.raw)


async def _topups(app: RunningBot) -> list[LedgerEntry]:
    async with app.sessionmaker() as session:
        rows = await session.scalars(
            select(LedgerEntry).where(LedgerEntry.kind == LedgerKind.TOPUP.value)
        )
        return list(rows.all())


async def test_stars_alone_need_no_yookassa_and_the_menu_shows_what_each_pack_credits(
    start_bot: StartBot, tg
) -> None:
    await start_bot(yookassa=False, **STARS)
    user = tg.user(7001)
    await user.send_text("/balance")
    balance = await user.wait_for_text("Баланс:")
    await user.press(balance, text="Пополнить")
    menu = await user.wait_for_text("На сколько пополнить?")
    assert menu.button_texts == [
        "⭐ 50 → 60 ₽",
        "⭐ 100 → 120 ₽",
        "⭐ 250 → 300 ₽",
        "✖️ Отмена",
    ]


async def test_both_methods_in_the_order_of_payment_methods(start_bot: StartBot, tg) -> None:
    await start_bot(PAYMENT_METHODS="stars,yookassa", STARS_PACKS="50")
    user = tg.user(7002)
    await user.send_text("/balance")
    await user.press(await user.wait_for_text("Баланс:"), text="Пополнить")
    menu = await user.wait_for_text("На сколько пополнить?")
    assert menu.button_texts[0] == "⭐ 50 → 50 ₽"
    assert "100 ₽" in menu.button_texts and "✍️ Другая сумма" in menu.button_texts


async def test_a_pack_paid_is_credited_once_with_a_message_of_the_new_balance(
    start_bot: StartBot, tg, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.routers.stars")
    app = await start_bot(yookassa=False, **STARS)
    user = tg.user(7003)
    invoice = await _invoice(user)
    assert invoice.raw["invoice"]["currency"] == "XTR"
    assert invoice.raw["invoice"]["total_amount"] == 100
    [call] = await tg.calls("sendInvoice")
    assert not call["params"].get("provider_token")

    [row] = await app.payments()
    assert row.provider == PaymentProvider.STARS and row.status == PaymentStatus.PENDING
    assert row.stars == 100 and row.amount == 12_000 and row.currency == "XTR"

    paid = await user.pay(invoice)
    assert paid["ok"], paid
    assert await user.stars() == 900
    done = await user.wait_for_text("Оплата получена")
    assert "100 ⭐ → +120 ₽" in done.text and "На балансе 120 ₽" in done.text
    [row] = await app.payments()
    assert row.status == PaymentStatus.SUCCEEDED and row.telegram_charge_id == paid["charge_id"]
    assert (await app.user(7003)).balance == 12_000  # type: ignore[union-attr]
    [entry] = await _topups(app)
    assert entry.payment_id == row.id and entry.amount == 12_000

    # The same successful_payment delivered again: nothing more, no second message.
    await user.redeliver(paid["update"]["update_id"])
    await wait_until(lambda: _logged(caplog, "delivered again: already credited"))
    assert len(await _topups(app)) == 1
    assert (await app.user(7003)).balance == 12_000  # type: ignore[union-attr]
    assert sum("Оплата получена" in m.text for m in await user.bot_messages()) == 1


async def _logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return text in caplog.text


async def test_an_old_invoice_paid_again_is_credited_on_a_row_of_its_own(
    start_bot: StartBot, tg
) -> None:
    app = await start_bot(yookassa=False, **STARS)
    user = tg.user(7004)
    invoice = await _invoice(user, "⭐ 50")
    # Two payments of the same invoice at once (two devices): both pre-checkouts come
    # before either charge, so Telegram charges twice — both must be credited.
    held = [await user.pay(invoice, hold=True) for _ in range(2)]
    assert all(h["ok"] for h in held), held
    first = await user.complete_payment(held[0]["approved"])
    second = await user.complete_payment(held[1]["approved"])
    assert first["ok"] and second["ok"], (first, second)
    assert first["charge_id"] != second["charge_id"]
    await wait_until(lambda: _count(app, 2))
    rows = await app.payments()
    assert {r.telegram_charge_id for r in rows} == {first["charge_id"], second["charge_id"]}
    assert all(r.status == PaymentStatus.SUCCEEDED and r.amount == 6_000 for r in rows)
    assert (await app.user(7004)).balance == 12_000  # type: ignore[union-attr]

    # Later the old, credited invoice is refused at the pre-checkout: nothing charged.
    again = await user.pay(invoice)
    assert not again["ok"] and "уже оплачен" in again["error_message"]
    assert await user.stars() == 900


async def _count(app: RunningBot, n: int) -> bool:
    return len(await _topups(app)) == n


async def _send_invoice(app: RunningBot, chat_id: int, payload: str, stars: int):  # type: ignore[no-untyped-def]
    """An invoice the bot did not make for this purchase (sent straight through the API)."""
    return await app.bot.send_invoice(
        chat_id=chat_id,
        title="Top-up",
        description="forged",
        payload=payload,
        currency="XTR",
        prices=[LabeledPrice(label="x", amount=stars)],
    )


async def test_an_altered_or_foreign_payload_is_refused_with_a_reason(
    start_bot: StartBot, tg
) -> None:
    app = await start_bot(yookassa=False, **STARS)
    owner = tg.user(7005)
    await _invoice(owner)
    [row] = await app.payments()
    good = f"stars:{row.id}:{row.idempotence_key}"

    other = tg.user(7006)
    await other.send_text("/start")
    await other.wait_for_text("Привет")
    foreign = await _send_invoice(app, 7006, good, 100)
    refused = await other.pay(foreign.message_id)
    assert not refused["ok"] and "другому пользователю" in refused["error_message"]

    altered = await _send_invoice(app, 7005, f"stars:{row.id}:{'0' * 32}", 100)
    answer = await owner.pay(altered.message_id)
    assert not answer["ok"] and "изменён" in answer["error_message"]

    cheaper = await _send_invoice(app, 7005, good, 1)
    answer = await owner.pay(cheaper.message_id)
    assert not answer["ok"] and "не совпадает" in answer["error_message"]

    assert await owner.stars() == 1000 and await other.stars() == 1000
    assert await _topups(app) == []
    [row] = await app.payments()
    assert row.status == PaymentStatus.PENDING
