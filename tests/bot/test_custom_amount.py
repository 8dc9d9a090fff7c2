""" "Другая сумма": whole rubles from TOPUP_MIN_RUB to TOPUP_MAX_RUB; every other answer
gets a clear reply and the state stays; "Отмена" or /start leaves it.

Decision (bot.inputs.parse_rub_amount): a ruble sign or word after the number is accepted
("100₽", "100 ₽", "100 руб", "100 р.") — the meaning is unambiguous — and so is a space
between thousands ("1 000"). Fractions, signs, exponents and non-ASCII digits are not.
"""

from __future__ import annotations

import pytest

from bot.inputs import Answer, parse_rub_amount
from tests.bot.conftest import StartBot

BAD_INPUTS = [
    ("abc", "Нужно целое число"),
    ("10.5", "Только целые рубли"),
    ("10,5", "Только целые рубли"),
    ("-5", "Минимальная сумма — 10 ₽"),
    ("0", "Минимальная сумма — 10 ₽"),
    ("9", "Минимальная сумма — 10 ₽"),
    ("1e9", "Нужно целое число"),
    ("١٠٠", "Нужно целое число"),
    ("💰💰", "Нужно целое число"),
    ("1" * 30, "Максимальная сумма"),
    ("100001", "Максимальная сумма"),
]


async def _ask_custom_amount(user):  # type: ignore[no-untyped-def]
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    await user.press(menu, text="💰 Оплатить / Баланс")
    topup = await user.wait_for_text("На сколько пополнить?")
    await user.press(topup, text="Другая сумма")
    await user.wait_for_text("Напишите сумму в рублях")


async def test_every_bad_custom_amount_gets_a_clear_reply_and_the_state_stays(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    app = await start_bot()
    user = tg.user(7001)
    await _ask_custom_amount(user)
    for text, expected in BAD_INPUTS:
        await user.send_text(text)
        reply = await user.wait_for_text(expected)
        assert "✖️ Отмена" in reply.button_texts, text
    await user.send_photo(photo)
    await user.wait_for_text("Нужно целое число")
    assert await app.payments() == []

    # Still waiting for the amount: a good one now goes through.
    await user.send_text("100₽")
    invoice = await user.wait_for_text("готов")
    assert "100 ₽" in invoice.text
    [row] = await app.payments()
    assert row.amount == 10000


async def test_custom_amount_accepts_the_minimum_and_thousands_with_a_space(
    start_bot: StartBot, tg
) -> None:
    app = await start_bot()
    user = tg.user(7002)
    await _ask_custom_amount(user)
    await user.send_text("10")
    await user.wait_for_text("готов")
    await _ask_custom_amount(user)
    await user.send_text("1 500 руб")
    await user.wait_for_text("готов")
    assert [p.amount for p in await app.payments()] == [1000, 150000]


async def test_cancel_leaves_the_custom_amount_state(start_bot: StartBot, tg) -> None:
    app = await start_bot()
    user = tg.user(7003)
    await _ask_custom_amount(user)
    prompt = await user.wait_for_text("Напишите сумму", since=0)
    await user.press(prompt, text="Отмена")
    await user.wait_for_text("пополнение отменено")
    await user.send_text("500")
    await user.wait_for_text("сначала выберите режим")
    assert await app.payments() == []


async def test_start_leaves_the_custom_amount_state(start_bot: StartBot, tg) -> None:
    app = await start_bot()
    user = tg.user(7004)
    await _ask_custom_amount(user)
    await user.send_text("/start")
    await user.wait_for_text("Что сделаем?")
    await user.send_text("500")
    await user.wait_for_text("сначала выберите режим")
    assert await app.payments() == []


async def test_custom_amount_state_survives_a_bot_restart(start_bot: StartBot, tg) -> None:
    first = await start_bot()
    user = tg.user(7005)
    await _ask_custom_amount(user)
    await first.stop()
    second = await start_bot()  # a new process would read the same Redis
    await user.send_text("250")
    await user.wait_for_text("готов")
    assert [p.amount for p in await second.payments()] == [25000]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100", 100),
        (" 100 ", 100),
        ("100₽", 100),
        ("100 ₽", 100),
        ("100 руб", 100),
        ("100 руб.", 100),
        ("100 рублей", 100),
        ("100 р.", 100),
        ("100 RUB", 100),
        ("1 000", 1000),
        ("1\u00a0000", 1000),
        ("0100", 100),
        ("100000", 100000),
    ],
)
def test_parse_rub_amount_accepts_whole_rubles_with_an_optional_ruble_sign(
    text: str, expected: int
) -> None:
    assert parse_rub_amount(text, minimum=10, maximum=100_000) == expected


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("abc", "bot-topup-amount-not-number"),
        ("", "bot-topup-amount-not-number"),
        (None, "bot-topup-amount-not-number"),
        ("10.5", "bot-topup-amount-fraction"),
        ("10,5", "bot-topup-amount-fraction"),
        ("10.00", "bot-topup-amount-fraction"),
        ("-5", "bot-topup-amount-too-small"),
        ("−5", "bot-topup-amount-too-small"),
        ("+50", "bot-topup-amount-not-number"),
        ("0", "bot-topup-amount-too-small"),
        ("9", "bot-topup-amount-too-small"),
        ("1e9", "bot-topup-amount-not-number"),
        ("١٠٠", "bot-topup-amount-not-number"),
        ("１００", "bot-topup-amount-not-number"),
        ("💰", "bot-topup-amount-not-number"),
        ("9" * 30, "bot-topup-amount-too-large"),
        ("100001", "bot-topup-amount-too-large"),
        ("10 00", "bot-topup-amount-not-number"),
        ("₽", "bot-topup-amount-not-number"),
        ("100 $", "bot-topup-amount-not-number"),
    ],
)
def test_parse_rub_amount_refuses_everything_else_with_a_reason(
    text: str | None, key: str
) -> None:
    result = parse_rub_amount(text, minimum=10, maximum=100_000)
    assert isinstance(result, Answer) and result.key == key
