"""What the user sees of plans, in Russian and English: /plans (the plan, its quota and
reset, packages, the plans to buy), /balance, /settings, the 📋 button."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from billing import accounts
from billing.models import NoticeOutcome, PaymentNotice, Plan, User
from bot.callbacks import Menu
from tests.billing.holdings import give_holding
from tests.bot.conftest import RunningBot, StartBot
from texts.wallet_texts import date_text
from tg.buttons import MENU_PLANS, MENU_TOPUP


async def _account(app: RunningBot, telegram_id: int, *, balance: int = 0) -> int:
    async with app.sessionmaker() as session:
        user, _ = await accounts.get_or_create_user(
            session, telegram_id=telegram_id, free_operations=app.settings.FREE_OPERATIONS_COUNT
        )
        if balance:
            await accounts.adjust(session, user_id=user.id, amount=balance, reason="test")
        await session.commit()
        return user.id


def test_the_workers_buttons_are_the_bots_own_payloads() -> None:
    assert Menu(action="plans").pack() == MENU_PLANS
    assert Menu(action="topup").pack() == MENU_TOPUP


async def test_plans_for_a_newcomer_in_russian(start_bot: StartBot, tg) -> None:
    await start_bot()
    user = tg.user(14001)
    await user.send_text("/plans")
    screen = await user.wait_for_text("Ваш тариф")
    text = screen.text
    assert "Ваш тариф: Бесплатный" in text
    assert "Бесплатных операций: 4" in text
    assert "Баланс: 0 ₽" in text
    assert "Сверх тарифа — 10 ₽ за операцию" in text
    assert "Про — 199 ₽ в месяц: 30 операций в месяц, скидка 10 % на операции с баланса" in text
    assert "Пакет 10 операций — 80 ₽: 10 операций, действует 90 дней" in text
    assert "со следующего периода" in text
    assert "Бесплатный —" not in text  # the default plan is not for sale
    assert screen.button_texts == [
        "Про — 199 ₽",
        "Пакет 10 операций — 80 ₽",
        "💳 Пополнить баланс",
        "🧾 История",
        "🏠 Меню",
    ]


async def test_plans_in_english(start_bot: StartBot, tg) -> None:
    await start_bot()
    user = tg.user(14002, language="en")
    await user.send_text("/plans")
    screen = await user.wait_for_text("Your plan")
    assert "Your plan: Free" in screen.text
    assert "Pro — 199 ₽ a month: 30 operations a month, 10 % off operations paid from" in (
        screen.text
    )
    assert "Pack of 10 operations — 80 ₽: 10 operations, valid for 90 days" in screen.text
    assert screen.button_texts[:2] == ["Pro — 199 ₽", "Pack of 10 operations — 80 ₽"]
    assert "🧾 History" in screen.button_texts


async def test_plans_with_a_subscription_and_a_package_show_quota_reset_and_packages(
    start_bot: StartBot, tg
) -> None:
    app = await start_bot()
    user_id = await _account(app, 14003, balance=5000)
    async with app.sessionmaker() as session:
        await give_holding(session, user_id, "pro", units_left=18, ends_in=timedelta(days=12))
        await give_holding(session, user_id, "pack10", units_left=7, ends_in=None)
        await session.commit()
    holding_end = await _ends_at(app, user_id, "pro")
    user = tg.user(14003)
    await user.send_text("/plans")
    screen = await user.wait_for_text("Ваш тариф")
    date = date_text(holding_end, "ru")
    assert "Ваш тариф: Про — 199 ₽ в месяц" in screen.text
    assert f"Осталось 18 из 30 — обновится {date}" in screen.text
    assert f"Продлится {date}: 199 ₽ с баланса" in screen.text
    assert "Пакет 10 операций: осталось 7 операций, бессрочно" in screen.text
    assert "Сверх тарифа — 9 ₽ за операцию (скидка 10 %)" in screen.text
    assert "✅ Про — ваш тариф" in screen.button_texts
    assert "⏹ Выключить автопродление" in screen.button_texts

    await user.send_text("/balance")
    balance = await user.wait_for_text("Баланс:")
    assert "50 ₽" in balance.text and "Бесплатных операций: 4 из 4" in balance.text
    assert f"Подписка «Про»: осталось 18 из 30, обновится {date}" in balance.text
    assert "Пакет 10 операций: осталось 7 операций, бессрочно" in balance.text
    assert "Со скидкой вашего тарифа — 9 ₽ за операцию (−10 %)" in balance.text
    assert "📋 Тарифы" in balance.button_texts and "🧾 История" in balance.button_texts

    en = tg.user(14003, language="en")
    await en.send_text("/balance")
    english = await en.wait_for_text("Balance")
    assert "Subscription Pro: 18 of 30 left, resets" in english.text
    assert "Pack of 10 operations: 7 operations left, never expires" in english.text


async def _ends_at(app: RunningBot, user_id: int, code: str):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from billing.models import UserPlan
    from billing.wallet import _aware

    async with app.sessionmaker() as session:
        value = await session.scalar(
            select(UserPlan.ends_at)
            .join(Plan, Plan.id == UserPlan.plan_id)
            .where(UserPlan.user_id == user_id, Plan.code == code)
        )
    return _aware(value)


async def test_operation_units_are_said_on_the_plans(start_bot: StartBot, tg) -> None:
    await start_bot(OPERATION_UNITS="retouch=2,face_swap=3")
    user = tg.user(14004)
    await user.send_text("/plans")
    screen = await user.wait_for_text("Ваш тариф")
    assert "✨ Ретушь — по 2 операции; 🔄 Заменить лицо — по 3 операции; остальные — по 1." in (
        screen.text
    )
    await user.send_text("/help")
    help_ = await user.wait_for_text("Что я умею")
    assert "✨ Ретушь — по 2 операции; 🔄 Заменить лицо — по 3 операции" in help_.text
    # Every price the user sees says what a free operation and a quota pay for it.
    await user.send_text("/menu")
    menu = await user.wait_for_text("Что сделаем?")
    await user.press(menu, text="✨ Ретушь")
    prompt = await user.wait_for_text("портрет")
    assert (
        "Цена: 20 ₽ — или 2 операции из подписки или пакета, или одна бесплатная операция."
        in prompt.text
    )


async def test_the_menu_has_a_plans_button_that_opens_the_plans(start_bot: StartBot, tg) -> None:
    await start_bot()
    user = tg.user(14005)
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    assert "📋 Тарифы" in menu.button_texts
    await user.press(menu, text="📋 Тарифы")
    await user.wait_for_text("Ваш тариф: Бесплатный")


async def test_settings_turn_the_confirmation_on_and_off(start_bot: StartBot, tg) -> None:
    app = await start_bot()
    user = tg.user(14006)
    await user.send_text("/settings")
    screen = await user.wait_for_text("Настройки")
    assert "Подтверждение перед списанием: выключено" in screen.text
    assert screen.button_texts == ["✅ Спрашивать перед списанием", "🏠 Меню"]
    await user.press(screen, text="Спрашивать перед списанием")
    on = await user.wait_for_text("включено")
    assert on.message_id == screen.message_id  # edited in place
    assert on.button_texts == ["⏩ Не спрашивать", "🏠 Меню"]
    account = await app.user(14006)
    assert account is not None and account.confirm_charges is True
    await user.press(on, text="Не спрашивать")
    await user.wait_for_text("выключено")
    account = await app.user(14006)
    assert account is not None and account.confirm_charges is False

    en = tg.user(14007, language="en")
    await en.send_text("/settings")
    english = await en.wait_for_text("Settings")
    assert "Confirm before a charge: off" in english.text
    assert english.button_texts == ["✅ Ask before charging", "🏠 Menu"]


async def test_the_operators_default_asks_until_the_user_says_otherwise(
    start_bot: StartBot, tg
) -> None:
    app = await start_bot(CONFIRM_CHARGES_DEFAULT=True)
    user = tg.user(14008)
    await user.send_text("/settings")
    screen = await user.wait_for_text("Настройки")
    assert "Подтверждение перед списанием: включено" in screen.text
    async with app.sessionmaker() as session:
        await session.execute(
            update(User).where(User.telegram_id == 14008).values(confirm_charges=False)
        )
        await session.commit()
    await user.send_text("/settings")
    await user.wait_for_text("Подтверждение перед списанием: выключено")


async def _due_subscription(app: RunningBot, telegram_id: int, *, balance: int) -> int:
    """A user whose Про period ended a minute ago (the roll-over is due)."""
    user_id = await _account(app, telegram_id, balance=balance)
    async with app.sessionmaker() as session:
        await give_holding(session, user_id, "pro", units_left=3, ends_in=timedelta(minutes=-1))
        await session.commit()
    return user_id


async def test_plans_renews_what_is_due_and_says_so_at_once(start_bot: StartBot, tg) -> None:
    app = await start_bot()
    user_id = await _due_subscription(app, 14010, balance=30000)
    user = tg.user(14010)
    await user.send_text("/plans")
    screen = await user.wait_for_text("Ваш тариф: Про")
    assert "Осталось 30 из 30" in screen.text  # this period's quota, not the last one's
    told = await user.wait_for_text("продлена до", since=0)
    assert "Списано 199 ₽, на балансе 101 ₽." in told.text
    async with app.sessionmaker() as session:
        notice = await session.scalar(select(PaymentNotice))
    assert notice is not None and notice.outcome == NoticeOutcome.SENT  # not sent twice
    assert user_id


async def test_a_charge_that_ends_a_plan_on_the_way_says_so_with_a_top_up_button(
    start_bot: StartBot, tg, photo: bytes
) -> None:
    app = await start_bot(FREE_OPERATIONS_COUNT=0)
    await _due_subscription(app, 14011, balance=1000)
    user = tg.user(14011)
    await user.send_text("/menu")
    menu = await user.wait_for_text("Что сделаем?")
    await user.press(menu, text="✨ Ретушь")
    await user.wait_for_text("портрет")
    await user.send_photo(photo)
    ended = await user.wait_for_text("не продлена")
    assert ended.button_texts == ["💳 Пополнить баланс"]
    queued = await user.wait_for_text("В очереди", since=0)
    assert "Списано 10 ₽, на балансе 0 ₽." in queued.text  # the balance paid: the plan ended
    [operation] = await app.operations()
    assert operation.funding == "balance"
