"""Buying from /plans: from the balance (once per card, however many taps), short balance
(the price, a top-up and the card payment), by YooKassa (the payment names the plan; "Проверить
оплату" credits and buys it), auto-renewal off and on, a change of subscription at renewal."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from billing import accounts, plans
from billing.models import LedgerEntry, LedgerKind, UserPlan
from sandbox.yookassa_client import YooKassaEmulatorClient
from tests.billing.holdings import give_holding
from tests.bot.conftest import RunningBot, StartBot
from texts.wallet_texts import date_text


async def _account(app: RunningBot, telegram_id: int, *, balance: int = 0) -> int:
    async with app.sessionmaker() as session:
        user, _ = await accounts.get_or_create_user(
            session, telegram_id=telegram_id, free_operations=app.settings.FREE_OPERATIONS_COUNT
        )
        if balance:
            await accounts.adjust(session, user_id=user.id, amount=balance, reason="test")
        await session.commit()
        return user.id


async def _holdings(app: RunningBot, user_id: int) -> list[UserPlan]:
    async with app.sessionmaker() as session:
        query = select(UserPlan).where(UserPlan.user_id == user_id).order_by(UserPlan.id)
        return list((await session.scalars(query)).all())


async def test_buy_a_package_from_the_balance_once_however_many_taps(
    start_bot: StartBot, tg
) -> None:
    app = await start_bot()
    user_id = await _account(app, 19001, balance=10000)
    user = tg.user(19001)
    await user.send_text("/plans")
    screen = await user.wait_for_text("Ваш тариф")
    await user.press(screen, text="Пакет 10 операций — 80 ₽")
    card = await user.wait_for_text("10 операций, действует 90 дней.")
    assert card.message_id == screen.message_id  # the card replaces the list in place
    assert card.button_texts == [
        "💰 Купить с баланса — 80 ₽",
        "💳 Оплатить картой — 80 ₽",
        "◀️ Все тарифы",
    ]
    data = card.button("Купить с баланса").callback_data
    taps = await asyncio.gather(*(user.press(card, data, forge=True) for _ in range(3)))
    done = await user.wait_for_text("✅ Куплен «Пакет 10 операций»")
    assert "10 операций, до " in done.text
    assert "Списано 80 ₽, на балансе 20 ₽." in done.text
    for tap in taps:
        await user.wait_for_answer(tap)
    [holding] = await _holdings(app, user_id)
    assert (holding.kind, holding.units_left) == ("package", 10)
    account = await app.user(19001)
    assert account is not None and account.balance == 2000
    async with app.sessionmaker() as session:
        purchases = await session.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.kind == LedgerKind.PLAN_PURCHASE)
        )
    assert purchases == 1

    # The card shown again is a new purchase: a second package beside the first.
    await user.press(done, text="Все тарифы")
    again = await user.wait_for_text("Пакет 10 операций: осталось 10 операций")
    await user.press(again, text="Пакет 10 операций — 80 ₽")
    card2 = await user.wait_for_text("действует 90 дней.")
    await user.press(card2, text="Купить с баланса")
    short = await user.wait_for_text("стоит 80 ₽, а на балансе 20 ₽")
    assert short.button_texts == [
        "💳 Пополнить баланс",
        "💳 Оплатить картой — 80 ₽",
        "◀️ Все тарифы",
    ]
    assert len(await _holdings(app, user_id)) == 1


async def test_buy_a_subscription_then_turn_auto_renewal_off_and_on(
    start_bot: StartBot, tg
) -> None:
    app = await start_bot()
    user_id = await _account(app, 19002, balance=25000)
    user = tg.user(19002)
    await user.send_text("/plans")
    screen = await user.wait_for_text("Ваш тариф")
    await user.press(screen, text="Про — 199 ₽")
    card = await user.wait_for_text("30 операций в месяц")
    await user.press(card, text="Купить с баланса")
    done = await user.wait_for_text("✅ Подключён тариф «Про»")
    [holding] = await _holdings(app, user_id)
    date = date_text(holding.ends_at, "ru")
    assert f"30 операций до {date}. Списано 199 ₽, на балансе 51 ₽." in done.text

    await user.send_text("/plans")
    mine = await user.wait_for_text("Ваш тариф: Про")
    assert f"Осталось 30 из 30 — обновится {date}" in mine.text
    assert f"Продлится {date}: 199 ₽ с баланса" in mine.text
    query = await user.press(mine, text="Выключить автопродление")
    answer = await user.wait_for_answer(query)
    assert answer["text"] == (
        f"⏹ Автопродление выключено. «Про» действует до {date}, потом — бесплатный тариф."
    )
    off = await user.wait_for_text("Автопродление выключено: тариф закончится")
    assert off.message_id == mine.message_id
    assert "🔁 Включить автопродление" in off.button_texts
    assert (await _holdings(app, user_id))[0].auto_renew is False
    query = await user.press(off, text="Включить автопродление")
    assert "Автопродление включено" in (await user.wait_for_answer(query))["text"]
    await user.wait_for_text(f"Продлится {date}")
    assert (await _holdings(app, user_id))[0].auto_renew is True


async def test_a_change_of_subscription_applies_at_the_renewal(start_bot: StartBot, tg) -> None:
    app = await start_bot()
    async with app.sessionmaker() as session:
        await plans.add_plan(
            session,
            code="max",
            kind="subscription",
            name_ru="Макс",
            name_en="Max",
            price=49900,
            period="month",
            units=100,
            sort_order=15,
        )
        await session.commit()
    user_id = await _account(app, 19003, balance=1000)
    async with app.sessionmaker() as session:
        await give_holding(session, user_id, "pro", units_left=12)
        await session.commit()
    [holding] = await _holdings(app, user_id)
    date = date_text(holding.ends_at, "ru")
    user = tg.user(19003)
    await user.send_text("/plans")
    screen = await user.wait_for_text("Ваш тариф: Про")
    assert "Макс — 499 ₽ в месяц: 100 операций в месяц" in screen.text
    await user.press(screen, text="Макс — 499 ₽")
    card = await user.wait_for_text("Новый тариф начнёт действовать")
    assert f"Сейчас у вас «Про». Новый тариф начнёт действовать {date}" in card.text
    assert card.button_texts == ["🔄 Перейти со следующего периода", "◀️ Все тарифы"]
    await user.press(card, text="Перейти со следующего периода")
    done = await user.wait_for_text("Договорились")
    assert f"с {date} — тариф «Макс», 499 ₽ в месяц с баланса. До тех пор действует «Про»." in (
        done.text
    )
    [holding] = await _holdings(app, user_id)
    assert holding.next_plan_id is not None and holding.units_left == 12
    await user.send_text("/plans")
    mine = await user.wait_for_text("Ваш тариф: Про")
    assert f"С {date} — тариф «Макс» (499 ₽ в месяц)" in mine.text
    account = await app.user(19003)
    assert account is not None and account.balance == 1000  # nothing taken now


async def test_pay_for_a_plan_by_card_and_check_the_payment(
    start_bot: StartBot, tg, yk: YooKassaEmulatorClient
) -> None:
    app = await start_bot()
    user_id = await _account(app, 19004)
    user = tg.user(19004)
    await user.send_text("/plans")
    screen = await user.wait_for_text("Ваш тариф")
    await user.press(screen, text="Пакет 10 операций — 80 ₽")
    card = await user.wait_for_text("действует 90 дней.")
    data = card.button("Оплатить картой").callback_data
    await asyncio.gather(*(user.press(card, data, forge=True) for _ in range(2)))
    invoice = await user.wait_for_text("Счёт на 80 ₽ за «Пакет 10 операций» готов")
    assert invoice.button("Перейти к оплате").url
    await user.send_text("/balance")  # both taps are answered by now
    await user.wait_for_text("Баланс")
    [row] = await app.payments()  # one payment for two taps
    assert row.amount == 8000
    creates = [r for r in await yk.requests(method="POST") if r["path"] == "/v3/payments"]
    assert [r["body"]["metadata"].get("plan_id") for r in creates] == ["3"]

    await yk.mark_succeeded(row.yookassa_payment_id)
    await user.press(invoice, text="Проверить оплату")
    told = await user.wait_for_text("подключён")
    assert "Пакет 10 операций" in told.text
    [holding] = await _holdings(app, user_id)
    assert holding.units_left == 10 and holding.payment_id == row.id
    account = await app.user(19004)
    assert account is not None and account.balance == 0


async def test_buying_in_english(start_bot: StartBot, tg) -> None:
    app = await start_bot()
    await _account(app, 19005, balance=5000)
    user = tg.user(19005, language="en")
    await user.send_text("/plans")
    screen = await user.wait_for_text("Your plan")
    await user.press(screen, text="Pro — 199 ₽")
    card = await user.wait_for_text("30 operations a month")
    assert card.button_texts == [
        "💰 Buy from the balance — 199 ₽",
        "💳 Pay by card — 199 ₽",
        "◀️ All plans",
    ]
    await user.press(card, text="Buy from the balance")
    short = await user.wait_for_text("Pro costs 199 ₽, and the balance is 50 ₽.")
    assert "Top up the balance or pay for the plan by card." in short.text
    assert short.button_texts[0] == "💳 Top up"
    assert await app.operations() == []


async def test_not_enough_names_only_the_ways_to_pay_offered(start_bot: StartBot, tg) -> None:
    """A Stars-only bot offers no card: the "not enough" screen says Stars, not card."""
    app = await start_bot(PAYMENT_METHODS="stars")
    await _account(app, 19015, balance=5000)
    user = tg.user(19015)
    await user.send_text("/plans")
    screen = await user.wait_for_text("Ваш тариф")
    await user.press(screen, text="Про — 199 ₽")
    card = await user.wait_for_text("30 операций в месяц")
    await user.press(card, text="Купить с баланса")
    short = await user.wait_for_text("на балансе 50 ₽")
    assert "Пополните баланс или оплатите тариф звёздами." in short.text
    assert "картой" not in short.text and not any("💳 Оплатить" in b for b in short.button_texts)
    assert any("⭐" in b for b in short.button_texts)
