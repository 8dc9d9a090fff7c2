"""Telegram Stars in a real browser: ``python -m sandbox`` with PAYMENT_METHODS=stars,yookassa
and no free operations; a person in headless Chromium opens the top-up, picks a ⭐ pack,
presses Pay on the invoice card (the emulator asks the bot's pre-checkout, then sends
successful_payment), sees the balance credited and the Stars taken, then pays for a
⬆️ Улучшить from that balance. The books: one Stars payment credited once, one charge, the
audit clean."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from billing.db import make_engine, make_sessionmaker
from billing.models import Operation, Payment, User
from tests.conftest import assert_audit_clean
from tests.sandbox_run.conftest import (
    WAIT,
    bot_messages,
    group_alive,
    press,
    sandbox_env,
    send_photo,
)

pytestmark = pytest.mark.browser


def stars_shown(page: Any, stars: int) -> Any:
    """The header's ⭐ balance once it reads ``stars``."""
    return page.locator(f'[data-testid=stars-balance][data-stars="{stars}"]')


async def test_a_person_tops_up_with_stars_and_pays_for_an_operation_in_the_browser(
    redis_url: str, sandbox_factory, browser: Any, photo_path: Path
) -> None:
    run = sandbox_factory(
        env=sandbox_env(redis_url, PAYMENT_METHODS="stars,yookassa", FREE_OPERATIONS_COUNT="0")
    )
    info = run.start()
    page = await browser.new_page(viewport={"width": 860, "height": 1400}, locale="ru-RU")
    await page.goto(info["chat_url"])
    await stars_shown(page, 1000).wait_for(timeout=WAIT)  # the emulator's default

    await page.get_by_test_id("start").click()
    await bot_messages(page, "на балансе 0 ₽").wait_for(timeout=WAIT)
    await press(page, "на балансе 0 ₽", "💰 Оплатить / Баланс")

    # the menu offers both ways; a 100 ⭐ pack credits 100 ₽
    menu = bot_messages(page, "На сколько пополнить").last
    await menu.wait_for(timeout=WAIT)
    buttons = await menu.get_by_test_id("inline-button").all_inner_texts()
    assert "100 ₽" in buttons and "⭐ 100 → 100 ₽" in buttons
    await press(page, "На сколько пополнить", "⭐ 100 → 100 ₽")

    card = page.get_by_test_id("invoice").last
    await card.wait_for(timeout=WAIT)
    assert await card.get_by_test_id("invoice-title").inner_text() == "Пополнение на 100 ₽"
    assert await card.get_by_test_id("invoice-amount").inner_text() == "⭐ 100"
    invoice = bot_messages(page).filter(has=page.get_by_test_id("invoice")).last
    pay = invoice.get_by_test_id("pay")
    assert await pay.inner_text() == "Оплатить ⭐100"
    await pay.click()

    # the bot approved the pre-checkout, Telegram took the Stars, the bot credited once
    credited = bot_messages(page, "Оплата получена: 100 ⭐ → +100 ₽")
    await credited.wait_for(timeout=WAIT)
    assert "На балансе 100 ₽" in await credited.inner_text()
    await stars_shown(page, 900).wait_for(timeout=WAIT)
    await card.get_by_test_id("invoice-status").filter(has_text="Оплачено").wait_for(timeout=WAIT)
    assert await pay.is_disabled()
    assert await page.get_by_test_id("service").filter(has_text="Вы оплатили ⭐100").count() == 1

    # a paid ⬆️ Улучшить from the credited balance: the result and the charge
    await press(page, "Оплата получена", "⬆️ Улучшить")
    await bot_messages(page, "Пришлите фото").wait_for(timeout=WAIT)
    await send_photo(page, photo_path)
    paid = bot_messages(page, "Списано 10 ₽. Баланс: 90 ₽")
    await paid.wait_for(timeout=WAIT)
    image = paid.get_by_test_id("photo")
    await page.wait_for_function(
        "img => img.complete && img.naturalWidth === 1024",
        arg=await image.element_handle(),
        timeout=WAIT,
    )
    assert await stars_shown(page, 900).count() == 1  # rubles paid for it, not Stars

    user_id = info["chat_user_id"]
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{info['telegram_url']}/_emu/stars", params={"user_id": user_id}) as resp,
    ):
        emulated = await resp.json()
    assert emulated["stars"] == 900
    assert [(c["total_amount"], c["refunded"]) for c in emulated["charges"]] == [(100, False)]
    await page.close()

    groups = list(info["processes"].values())
    assert run.stop(signal.SIGINT) == 0
    assert [g for g in groups if group_alive(g)] == []

    engine = make_engine(info["database_url"])
    try:
        async with make_sessionmaker(engine)() as session:
            user = (
                await session.execute(select(User).where(User.telegram_id == user_id))
            ).scalar_one()
            assert (user.balance, user.free_operations_left) == (9000, 0)
            operations = await session.scalar(
                select(func.count()).select_from(Operation).where(Operation.user_id == user.id)
            )
            assert operations == 1
            payments = (
                (await session.execute(select(Payment).where(Payment.user_id == user.id)))
                .scalars()
                .all()
            )
            assert [
                (p.amount, str(p.status), p.stars, p.telegram_charge_id) for p in payments
            ] == [(10000, "succeeded", 100, emulated["charges"][0]["charge_id"])]
        await assert_audit_clean(engine)
    finally:
        await engine.dispose()
