"""Forged buttons and admin commands with numbers past 64 bits (or not numbers at all) get a
plain answer, change nothing and leave no traceback in the log: they are refused before they
meet the database (billing.bounds)."""

from __future__ import annotations

import logging

import pytest

from sandbox.yookassa_client import YooKassaEmulatorClient
from tests.bot.conftest import RunningBot, StartBot

ADMIN = 5101
TARGET = 5102

FORGED_BUTTONS = [
    "pay:99999999999999999999",
    "pay:9223372036854775808",
    "pay:-1",
    "pay:0",
    "pay:١٢٣",
    "pay:1e3",
    "pay:+1",
    "pay:1_0",
    "top:99999999999999999999",
    "top:-9223372036854775809",
    "top:١",
]


def _no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert bad == [], [r.getMessage() for r in bad]


async def _books(app: RunningBot) -> tuple[int, list[int], int]:
    users = await app.user(TARGET)
    return (
        await app.ledger_count(),
        [p.id for p in await app.payments()],
        users.balance if users else 0,
    )


async def test_a_forged_button_with_a_number_past_64_bits_is_outdated(
    start_bot: StartBot, tg, yk: YooKassaEmulatorClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    app = await start_bot()
    user = tg.user(TARGET)
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    before = await _books(app)
    for forged in FORGED_BUTTONS:
        query = await user.press(menu, forged, forge=True)
        answer = await user.wait_for_answer(query)
        assert "больше не работает" in answer["text"], forged
        assert answer.get("show_alert") is True
    assert await _books(app) == before
    assert await yk.requests() == []
    refused = [r for r in caplog.records if "unhandled callback data" in r.getMessage()]
    assert len(refused) == len(FORGED_BUTTONS)
    _no_traceback(caplog)

    # An English user reads it in English.
    english = tg.user(TARGET + 10, language="en")
    await english.send_text("/start")
    menu = await english.wait_for_text("Hi")
    query = await english.press(menu, "pay:99999999999999999999", forge=True)
    assert "no longer works" in (await english.wait_for_answer(query))["text"]


HOSTILE_COMMANDS = [
    (f"/grant {TARGET} 92233720368547758.07 x", "Слишком большая сумма"),
    (f"/grant {TARGET} 100000.01 x", "не больше 100\u202f000 ₽"),
    (f"/debit {TARGET} 99999999999999999999 x", "Слишком большая сумма"),
    (f"/grant {TARGET} {'9' * 5000} x", "Слишком большая сумма"),
    (f"/grant {TARGET} 1e17 x", "не сумма"),
    (f"/grant {TARGET} NaN x", "не сумма"),
    (f"/grant {TARGET} inf x", "не сумма"),
    (f"/grant {TARGET} -1e17 x", "положительной"),
    (f"/grant {TARGET} ١٠٠ x", "не сумма"),
    ("/grant 99999999999999999999 5 x", "не Telegram id"),
    ("/grant -5102 5 x", "не Telegram id"),
    ("/grant ٥١٠٢ 5 x", "не Telegram id"),
    ("/user 99999999999999999999", "Формат: /user"),
    ("/user ٥١٠٢", "Формат: /user"),
]


async def test_hostile_admin_numbers_get_a_plain_answer_and_change_nothing(
    start_bot: StartBot, tg, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    app = await start_bot(ADMIN_IDS=[ADMIN])
    target = tg.user(TARGET)
    await target.send_text("/start")
    await target.wait_for_text("Привет")
    admin = tg.user(ADMIN)
    before = await _books(app)
    for text, expected in HOSTILE_COMMANDS:
        await admin.send_text(text)
        reply = await admin.wait_for_text(expected)
        assert "Начислено" not in reply.text and "Списано" not in reply.text, text
    assert await _books(app) == before
    assert [m for m in await target.bot_messages() if "Администратор" in m.text] == []
    _no_traceback(caplog)

    # The configured maximum is the limit: exactly it is allowed.
    await admin.send_text(f"/grant {TARGET} 100000 ровно предел")
    await admin.wait_for_text("Новый баланс: 100\u202f000 ₽")


async def test_the_admin_limit_comes_from_the_settings(start_bot: StartBot, tg) -> None:
    app = await start_bot(ADMIN_IDS=[ADMIN], ADMIN_ADJUST_MAX_RUB=50)
    target = tg.user(TARGET)
    await target.send_text("/start")
    await target.wait_for_text("Привет")
    admin = tg.user(ADMIN, language="en")
    await admin.send_text(f"/grant {TARGET} 50.01 x")
    await admin.wait_for_text("at most 50 ₽ per command")
    assert (await app.user(TARGET)).balance == 0  # type: ignore[union-attr]
