"""The README's promise, in a real browser: ``python -m sandbox`` on a fresh state directory,
then a person in headless Chromium talks to the bot on the chat page — /start, the four free
operations, a 100 ₽ top-up through the YooKassa checkout page, a paid ⬆️ Улучшить — and sees
the result and the new balance. Saves the screenshot the README shows."""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path
from typing import Any

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

# The README's picture is refreshed only on request (SCREENSHOT_PATH=docs/screenshot.png);
# an ordinary test run leaves the work tree clean.
SCREENSHOT = Path(
    os.environ.get("SCREENSHOT_PATH", Path(tempfile.gettempdir()) / "media-lab-screenshot.png")
)


async def test_a_person_uses_free_operations_tops_up_and_pays_in_the_browser(
    redis_url: str, sandbox_factory, browser: Any, photo_path: Path
) -> None:
    run = sandbox_factory(env=sandbox_env(redis_url))
    info = run.start()
    context = await browser.new_context(
        viewport={"width": 860, "height": 1400}, locale="ru-RU", accept_downloads=True
    )
    page = await context.new_page()
    await page.goto(info["chat_url"])

    # /start: the greeting with 4 free operations and the menu
    await page.get_by_test_id("start").click()
    await bot_messages(page, "Бесплатных операций: 4 из 4").wait_for(timeout=WAIT)

    # the four free operations: ⬆️ Улучшить on a photo, one after another
    await press(page, "Что сделаем", "⬆️ Улучшить")
    await bot_messages(page, "Пришлите фото").wait_for(timeout=WAIT)
    results = page.locator("[data-from=bot] [data-testid=photo]")
    for used in range(1, 5):
        await send_photo(page, photo_path)
        await bot_messages(page, f"Осталось бесплатных: {4 - used}").wait_for(timeout=WAIT)
        assert await results.count() == used
    assert (
        "Фото увеличено: 1024×1024"
        in await bot_messages(page).filter(has=page.get_by_test_id("photo")).last.inner_text()
    )

    # the fifth needs money: the bot offers a top-up
    await send_photo(page, photo_path)
    await bot_messages(page, "Бесплатные операции закончились").wait_for(timeout=WAIT)
    await press(page, "Бесплатные операции закончились", "Пополнить баланс")
    await press(page, "На сколько пополнить", "100 ₽")
    invoice = bot_messages(page, "Счёт на 100 ₽").last
    await invoice.wait_for(timeout=WAIT)

    # the payment link opens the YooKassa checkout page in a new tab; pay there
    pay_link = invoice.get_by_test_id("inline-button").filter(has_text="Перейти к оплате")
    assert (await pay_link.get_attribute("href")).startswith(info["yookassa_url"] + "/checkout/")
    async with context.expect_page() as new_tab:
        await pay_link.click()
    checkout = await new_tab.value
    await checkout.wait_for_load_state()
    assert "100,00" in await checkout.get_by_test_id("amount").inner_text()
    await checkout.get_by_test_id("pay").click()
    await checkout.wait_for_url(info["chat_url"] + "*", timeout=WAIT)  # the return URL
    await checkout.close()

    # YooKassa's notification reached the web server, which credited once and said so
    credited = bot_messages(page, "Баланс пополнен на 100 ₽")
    await credited.wait_for(timeout=WAIT)
    assert "Текущий баланс: 100 ₽" in await credited.inner_text()

    # a paid ⬆️ Улучшить: the result and the new balance
    await page.get_by_test_id("composer-text").fill("/start")
    await page.get_by_test_id("composer-text").press("Enter")
    await bot_messages(page, "на балансе 100 ₽").wait_for(timeout=WAIT)
    await press(page, "на балансе 100 ₽", "⬆️ Улучшить")
    await bot_messages(page, "Пришлите фото").nth(1).wait_for(timeout=WAIT)
    await send_photo(page, photo_path)
    paid = bot_messages(page, "Списано 10 ₽. Баланс: 90 ₽")
    await paid.wait_for(timeout=WAIT)
    assert await results.count() == 5
    image = paid.get_by_test_id("photo")
    await page.wait_for_function(
        "img => img.complete && img.naturalWidth === 1024",
        arg=await image.element_handle(),
        timeout=WAIT,
    )
    # the uncompressed file comes on the result's 📎 button, and is downloadable
    await press(page, "Списано 10 ₽. Баланс: 90 ₽", "📎 Файл без сжатия")
    document = bot_messages(page, "Файл без сжатия.").last.get_by_test_id("document")
    await document.wait_for(timeout=WAIT)
    async with page.expect_download() as download_info:
        await document.click()
    download = await download_info.value
    assert Path(await download.path()).stat().st_size > 0

    await page.get_by_test_id("composer-text").click()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOT))
    await context.close()

    groups = list(info["processes"].values())
    assert run.stop(signal.SIGINT) == 0
    assert [g for g in groups if group_alive(g)] == []

    # the books: 4 free + 1 paid operation, one credited payment, and a clean audit
    engine = make_engine(info["database_url"])
    try:
        async with make_sessionmaker(engine)() as session:
            user = (
                await session.execute(select(User).where(User.telegram_id == info["chat_user_id"]))
            ).scalar_one()
            assert user.balance == 9000
            assert user.free_operations_left == 0
            operations = await session.scalar(
                select(func.count()).select_from(Operation).where(Operation.user_id == user.id)
            )
            assert operations == 5
            payments = (
                (await session.execute(select(Payment).where(Payment.user_id == user.id)))
                .scalars()
                .all()
            )
            assert [(p.amount, str(p.status)) for p in payments] == [(10000, "succeeded")]
        await assert_audit_clean(engine)
    finally:
        await engine.dispose()
