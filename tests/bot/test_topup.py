"""💰 Top-up over HTTP: the menu, presets, a forged callback, the YooKassa request, the
"Проверить оплату" path that credits once, and YooKassa being down."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import select

from billing import payments
from billing.models import NoticeOutcome, PaymentNotice, PaymentStatus
from sandbox.yookassa_client import YooKassaEmulatorClient
from tests.bot.conftest import StartBot, wait_until


async def _open_topup(user):  # type: ignore[no-untyped-def]
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    await user.press(menu, text="💰 Оплатить / Баланс")
    return await user.wait_for_text("На сколько пополнить?")


async def test_balance_shows_rubles_free_operations_and_a_top_up_button(
    start_bot: StartBot, tg
) -> None:
    await start_bot()
    user = tg.user(6001)
    await user.send_text("/balance")
    balance = await user.wait_for_text("Баланс:")
    assert "0 ₽" in balance.text
    assert "Бесплатных операций: 4 из 4" in balance.text
    assert "💳 Пополнить баланс" in balance.button_texts


async def test_top_up_menu_offers_the_presets_another_amount_and_cancel(
    start_bot: StartBot, tg
) -> None:
    await start_bot()
    user = tg.user(6002)
    topup = await _open_topup(user)
    assert topup.button_texts == [
        "100 ₽",
        "300 ₽",
        "500 ₽",
        "1000 ₽",
        "✍️ Другая сумма",
        "✖️ Отмена",
    ]
    assert "Баланс: 0 ₽" in topup.text


async def test_preset_creates_a_yookassa_payment_with_the_right_body_and_headers(
    start_bot: StartBot, tg, yk: YooKassaEmulatorClient
) -> None:
    app = await start_bot()
    user = tg.user(6003)
    topup = await _open_topup(user)
    await user.press(topup, text="300 ₽")
    invoice = await user.wait_for_text("готов")
    assert "300 ₽" in invoice.text
    pay = invoice.button("Перейти к оплате")
    assert pay.url and "/checkout/" in pay.url
    assert "🔄 Проверить оплату" in invoice.button_texts

    [row] = await app.payments()
    assert row.amount == 30000 and row.currency == "RUB"
    assert row.status == PaymentStatus.PENDING
    account = await app.user(6003)
    assert account is not None and row.user_id == account.id

    creates = [r for r in await yk.requests(method="POST") if r["path"] == "/v3/payments"]
    assert len(creates) == 1
    request = creates[0]
    assert request["auth_ok"] is True
    assert request["headers"]["Idempotence-Key"] == row.idempotence_key
    body = request["body"]
    assert body["amount"] == {"value": "300.00", "currency": "RUB"}
    assert body["capture"] is True
    assert body["confirmation"]["type"] == "redirect"
    assert body["confirmation"]["return_url"] == "https://t.me/media_lab_bot"
    assert "300" in body["description"]
    ours = {"payment_row_id": str(row.id), "user_id": str(account.id), "telegram_id": "6003"}
    assert body["metadata"].items() >= ours.items()  # the SDK adds its own cms_name
    assert "receipt" not in body  # receipts are off by default
    assert row.yookassa_payment_id == YooKassaEmulatorClient.payment_id_from_url(pay.url)


async def test_check_payment_pressed_five_times_after_it_is_paid_credits_once(
    start_bot: StartBot, tg, yk: YooKassaEmulatorClient
) -> None:
    app = await start_bot()
    user = tg.user(6004)
    topup = await _open_topup(user)
    await user.press(topup, text="500 ₽")
    invoice = await user.wait_for_text("готов")

    query = await user.press(invoice, text="Проверить оплату")
    early = await user.wait_for_answer(query)
    assert "ещё не поступила" in early["text"]
    assert (await app.user(6004)).balance == 0  # type: ignore[union-attr]

    [row] = await app.payments()
    await yk.mark_succeeded(row.yookassa_payment_id)
    data = invoice.button("Проверить оплату").callback_data
    # An impatient user: five presses at once on the same button.
    presses = await asyncio.gather(*(user.press(invoice, data) for _ in range(5)))
    answers = [await user.wait_for_answer(q) for q in presses]
    texts = [a.get("text") or "" for a in answers]
    assert sum("Зачислено 500 ₽" in t for t in texts) == 1, texts
    assert sum("уже зачислен" in t for t in texts) == 4, texts

    account = await app.user(6004)
    assert account is not None and account.balance == 50000
    [row] = await app.payments()
    assert row.status == PaymentStatus.SUCCEEDED and row.credited_at is not None
    credited = await user.wait_for_text("Оплата получена", since=0)
    assert "500 ₽" in credited.text

    # A sixth press later, from the stale keyboard: still nothing more.
    late = await user.press(invoice, data, forge=True)
    answer = await user.wait_for_answer(late)
    assert "уже зачислен" in answer["text"]
    assert (await app.user(6004)).balance == 50000  # type: ignore[union-attr]

    # The bot told the user itself: its message is on record as sent, so the maintenance
    # pass (billing.notices, workers.notices) has nothing left to send.
    async def told() -> bool:
        return await app.scalar(select(PaymentNotice.outcome)) == NoticeOutcome.SENT

    await wait_until(told)


async def test_forged_callback_with_another_amount_is_refused(
    start_bot: StartBot, tg, yk: YooKassaEmulatorClient
) -> None:
    app = await start_bot()
    user = tg.user(6005)
    topup = await _open_topup(user)
    for forged in ("top:7", "top:-1", "top:100000", "top:1:99999", "top:abc", "amount:5000"):
        query = await user.press(topup, forged, forge=True)
        answer = await user.wait_for_answer(query)
        assert "больше не работает" in answer["text"], forged
        assert answer.get("show_alert") is True
    assert await app.payments() == []
    assert await yk.requests(method="POST") == []
    # Someone else's payment cannot be checked either.
    other = tg.user(6006)
    other_topup = await _open_topup(other)
    await other.press(other_topup, text="100 ₽")
    await other.wait_for_text("готов")
    [row] = await app.payments()
    query = await user.press(topup, f"pay:{row.id}", forge=True)
    assert "больше не работает" in (await user.wait_for_answer(query))["text"]


async def test_yookassa_down_gives_a_clear_message_and_marks_the_payment_failed(
    start_bot: StartBot, tg, yk: YooKassaEmulatorClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The create call's retries 10 ms apart, not 0.5 s and 1 s: the attempts are counted.
    monkeypatch.setattr(payments, "CREATE_BACKOFF", 0.01)
    app = await start_bot()
    user = tg.user(6007)
    topup = await _open_topup(user)
    await yk.fail_next(10, only="create", status=503)
    await user.press(topup, text="100 ₽")
    message = await user.wait_for_text("не отвечает")
    assert "Ничего не списано" in message.text
    creates = await yk.requests("/v3/payments", method="POST")
    assert len(creates) == payments.CREATE_ATTEMPTS  # given up after every attempt
    [row] = await app.payments()
    assert row.status == PaymentStatus.FAILED
    account = await app.user(6007)
    assert account is not None and account.balance == 0


async def test_top_up_is_not_offered_when_yookassa_is_not_configured(
    start_bot: StartBot, tg
) -> None:
    app = await start_bot(yookassa=False)
    user = tg.user(6008)
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    await user.press(menu, text="💰 Оплатить / Баланс")
    message = await user.wait_for_text("Пополнение сейчас недоступно")
    assert not any("₽" in b for b in message.button_texts)
    assert await app.payments() == []


async def test_receipt_email_is_asked_once_validated_and_remembered(
    start_bot: StartBot, tg, yk: YooKassaEmulatorClient
) -> None:
    app = await start_bot(YOOKASSA_RECEIPTS_ENABLED=True)
    user = tg.user(6009)
    topup = await _open_topup(user)
    await user.press(topup, text="100 ₽")
    await user.wait_for_text("нужен e-mail")
    await user.send_text("not an email")
    await user.wait_for_text("не похоже на e-mail")
    assert await app.payments() == []
    await user.send_text("anya@example.ru")
    await user.wait_for_text("готов")
    account = await app.user(6009)
    assert account is not None and account.email == "anya@example.ru"
    [create] = [r for r in await yk.requests(method="POST") if r["path"] == "/v3/payments"]
    assert create["body"]["receipt"]["customer"]["email"] == "anya@example.ru"

    # The second top-up does not ask again.
    topup = await _open_topup(user)
    await user.press(topup, text="300 ₽")
    await user.wait_for_text("готов")
    assert len(await app.payments()) == 2


async def test_a_re_delivered_preset_press_creates_one_payment(
    start_bot: StartBot, tg, yk: YooKassaEmulatorClient, caplog: pytest.LogCaptureFixture
) -> None:
    app = await start_bot()
    caplog.set_level(logging.INFO, logger="bot.once")
    user = tg.user(6010)
    topup = await _open_topup(user)
    query = await user.press(topup, text="100 ₽")
    await user.wait_for_text("готов")
    await user.redeliver(query.update_id)
    await user.redeliver(query.update_id)

    async def both_ignored() -> bool:
        key = f"re-delivered update ignored: callback:{query.id}"
        return sum(key in r.getMessage() for r in caplog.records) == 2

    await wait_until(both_ignored)
    assert len(await app.payments()) == 1
    creates = [r for r in await yk.requests(method="POST") if r["path"] == "/v3/payments"]
    assert len(creates) == 1


@pytest.mark.parametrize(
    ("language", "reason", "words"),
    [
        ("ru", "insufficient_funds", "недостаточно денег"),
        ("en", "card_expired", "expired"),
    ],
)
async def test_check_payment_of_a_canceled_payment_says_why(
    start_bot: StartBot, tg, yk: YooKassaEmulatorClient, language: str, reason: str, words: str
) -> None:
    """The user comes back from the payment page and checks first: the bot's answer is the
    one that says why (the webhook's message with the reason is then not sent)."""
    app = await start_bot()
    user = tg.user(6010, language=language)
    await user.send_text("/start")
    menu = await user.wait_for(lambda m: bool(m.buttons))
    await user.press(menu, text="💰")
    topup = await user.wait_for(lambda m: any("500" in b for b in m.button_texts))
    await user.press(topup, text="500 ₽")
    invoice = await user.wait_for(lambda m: any("🔄" in b for b in m.button_texts))
    [row] = await app.payments()
    await yk.mark_canceled(row.yookassa_payment_id, reason=reason)

    await user.press(invoice, text="🔄")
    told = await user.wait_for(lambda m: m.message_id == invoice.message_id and words in m.text)
    assert "500 ₽" in told.text
    [row] = await app.payments()
    assert row.status == PaymentStatus.CANCELED
    assert (await app.user(6010)).balance == 0  # type: ignore[union-attr]
