"""🔒: a mode the user's plans do not unlock shows a lock on its button; a tap says which
plans unlock it, with a button to see them, and charges nothing. A request in a mode that
got locked meanwhile (the charge refuses it: OperationLocked) is answered the same way."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from billing import accounts
from billing.models import Plan
from tests.billing.holdings import give_holding
from tests.bot.conftest import RunningBot, StartBot

BASIC = ["edit", "merge", "upscale", "add_text"]  # the default plan without retouch, face swap


async def _default_unlocks(app: RunningBot, unlocks: list[str] | None) -> None:
    async with app.sessionmaker() as session:
        await session.execute(update(Plan).where(Plan.is_default).values(unlocks=unlocks))
        await session.commit()


async def _only_pro_unlocks_everything(app: RunningBot) -> None:
    async with app.sessionmaker() as session:
        await session.execute(update(Plan).where(Plan.code == "pack10").values(unlocks=BASIC))
        await session.commit()


async def test_a_locked_mode_shows_a_lock_and_says_which_plans_unlock_it(
    start_bot: StartBot, tg
) -> None:
    app = await start_bot()
    await _default_unlocks(app, BASIC)
    await _only_pro_unlocks_everything(app)
    user = tg.user(16001)
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    assert "🔒 ✨ Ретушь" in menu.button_texts
    assert "🔒 🔄 Заменить лицо" in menu.button_texts
    assert "⬆️ Улучшить" in menu.button_texts  # unlocked: no lock
    await user.press(menu, text="🔒 ✨ Ретушь")
    told = await user.wait_for_text("открывается")
    assert told.text == "🔒 «✨ Ретушь» открывается в тарифах: «Про». Ничего не списано."
    assert told.button_texts == ["📋 Тарифы", "🏠 Меню"]
    await user.press(told, text="📋 Тарифы")
    await user.wait_for_text("Ваш тариф: Бесплатный")
    # The mode did not open: a photo now is outside any mode, and nothing is charged.
    assert await app.operations() == []
    account = await app.user(16001)
    assert account is not None and account.free_operations_left == 4

    en = tg.user(16002, language="en")
    await en.send_text("/menu")
    menu_en = await en.wait_for_text("Pick a mode")
    assert "🔒 ✨ Retouch" in menu_en.button_texts
    await en.press(menu_en, text="🔒 ✨ Retouch")
    told_en = await en.wait_for_text("comes with")
    assert told_en.text == "🔒 ✨ Retouch comes with the plans: Pro. Nothing was charged."
    assert told_en.button_texts == ["📋 Plans", "🏠 Menu"]


async def test_a_plan_that_unlocks_the_mode_takes_the_lock_off(start_bot: StartBot, tg) -> None:
    app = await start_bot()
    await _default_unlocks(app, BASIC)
    async with app.sessionmaker() as session:
        user, _ = await accounts.get_or_create_user(session, telegram_id=16003, free_operations=4)
        await give_holding(session, user.id, "pro", units_left=30)
        await session.commit()
    tg_user = tg.user(16003)
    await tg_user.send_text("/start")
    menu = await tg_user.wait_for_text("Что сделаем?")
    assert "✨ Ретушь" in menu.button_texts
    assert not any(text.startswith("🔒") for text in menu.button_texts)


async def test_a_mode_locked_while_open_is_refused_by_the_charge_with_nothing_charged(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    app = await start_bot()
    user = tg.user(16004)
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    await user.press(menu, text="✨ Ретушь")
    await user.wait_for_text("портрет")
    await _default_unlocks(app, BASIC)  # the operator narrows the free plan meanwhile
    await user.send_photo(photo)
    told = await user.wait_for_text("открывается")
    assert "«✨ Ретушь» открывается в тарифах: «Про», «Пакет 10 операций»" in told.text
    assert "📋 Тарифы" in told.button_texts
    assert await app.operations() == []
    account = await app.user(16004)
    assert account is not None and account.free_operations_left == 4


async def test_a_mode_no_plan_unlocks_says_so(start_bot: StartBot, tg) -> None:
    app = await start_bot()
    await _default_unlocks(app, BASIC)
    async with app.sessionmaker() as session:
        await session.execute(update(Plan).where(~Plan.is_default).values(unlocks=BASIC))
        await session.commit()
    user = tg.user(16005)
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    await user.press(menu, text="🔒 ✨ Ретушь")
    told = await user.wait_for_text("недоступен")
    assert "ни один тариф его не открывает" in told.text


async def test_a_subscription_due_for_its_renewal_keeps_its_modes_unlocked(
    start_bot: StartBot, tg
) -> None:
    """Its period ended a moment ago and nothing has rolled it over yet: the charge renews it
    before it checks access, so the menu must not show 🔒 on the modes it unlocks."""
    app = await start_bot()
    await _default_unlocks(app, BASIC)
    async with app.sessionmaker() as session:
        user, _ = await accounts.get_or_create_user(session, telegram_id=16005, free_operations=4)
        await give_holding(session, user.id, "pro", units_left=30, ends_in=timedelta(minutes=-1))
        await session.commit()
    tg_user = tg.user(16005)
    await tg_user.send_text("/start")
    menu = await tg_user.wait_for_text("Что сделаем?")
    assert "✨ Ретушь" in menu.button_texts
    assert not any(text.startswith("🔒") for text in menu.button_texts)
