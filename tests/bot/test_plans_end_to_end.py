"""Plans end to end, as a user lives them: the real ``python -m bot`` long-polling the Telegram
emulator, a real ``python -m workers`` (jobs, and its maintenance step with the plans pass),
the real ``python -m web`` taking the YooKassa emulator's notifications, all on one PostgreSQL
database. The user taps buttons and pays on the emulator's checkout page; nothing is written
to the database by hand except the clock: "time passes" is an SQL UPDATE moving a holding's
``ends_at`` into the past (see :func:`Journey.time_travel`).

One stack of processes for the module (starting aiogram and OpenCV takes seconds of CPU per
process); each test has its own users, an emptied database (the ``engine`` fixture) and the
ledger audit after it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from billing.db import make_sessionmaker
from billing.models import LedgerEntry, Operation, Payment, PaymentNotice, User, UserPlan
from sandbox.telegram_client import Message, TelegramEmulatorClient, TelegramUser
from sandbox.yookassa_client import YooKassaEmulatorClient
from tests.chaos.stack import TOKEN, ChaosStack, OwnRedis
from texts.wallet_texts import date_text

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
WAIT = 90.0  # seconds: generous, every wait ends as soon as its message is there

# The processes' settings (the rest: tests/chaos/stack.py's ChaosStack.values).
STACK_SETTINGS: dict[str, object] = {
    "RQ_QUEUE": "media-plans-e2e",
    "FREE_OPERATIONS_COUNT": 2,
    # The worker's maintenance step (where the plans pass runs) every second, and the plans
    # pass in every step: a holding moved into the past is rolled over within seconds.
    "SWEEP_INTERVAL_SECONDS": 1,
    "PLAN_RENEWAL_INTERVAL_SECONDS": 1,
}


@pytest.fixture(scope="module")
def plans_stack(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosStack]:
    """Bot, web, one worker and both emulators as processes, on this run's database and a
    Redis server of their own."""
    tmp = tmp_path_factory.mktemp("plans-e2e")
    redis_server = OwnRedis(tmp / "redis").start()
    stack = ChaosStack(
        tmp,
        database_url=pg_url,
        redis_server=redis_server,
        settings=STACK_SETTINGS,
        workers=1,
    )
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        redis_server.kill()


@pytest.fixture(scope="module")
def photo() -> bytes:
    return (FIXTURES / "astronaut.jpg").read_bytes()


class Journey:
    """One user's way through the bot, with the checks a user makes by reading the chat."""

    def __init__(
        self,
        stack: ChaosStack,
        engine: AsyncEngine,
        tg: TelegramEmulatorClient,
        yk: YooKassaEmulatorClient,
        user: TelegramUser,
    ) -> None:
        self.stack = stack
        self.sessionmaker = make_sessionmaker(engine)
        self.tg = tg
        self.yk = yk
        self.user = user

    async def wait(self, substring: str, *, since: int | None = None) -> Message:
        try:
            return await self.user.wait_for_text(substring, WAIT, since=since)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{self.stack.logs(60)}") from None

    async def say(self, words: str, answer: str) -> Message:
        await self.user.send_text(words)
        return await self.wait(answer)

    async def tap(self, message: Message, button: str, answer: str) -> Message:
        await self.user.press(message, text=button)
        return await self.wait(answer)

    async def upscale(self, photo: bytes, paid: str) -> tuple[Message, Message]:
        """⬆️ Улучшить with a photo: the bot's "в очереди" (what it took: ``paid``) and the
        worker's result (a photo whose caption says what it cost and what is left)."""
        await self.user.send_text("/menu")
        menu = await self.wait("Что сделаем?")
        await self.tap(menu, "⬆️ Улучшить", "Пришлите фото")
        await self.user.send_photo(photo)
        mark = self.user.mark
        queued = await self.wait("В очереди: увеличиваю фото.")
        assert paid in queued.text, queued.text
        try:
            result = await self.user.wait_for(
                lambda m: bool(m.photo) and "Фото увеличено" in m.text, WAIT, since=mark
            )
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{self.stack.logs(60)}") from None
        return queued, result

    async def top_up(self, rubles: int) -> Message:
        """💰 → a preset → "Оплатить" on the YooKassa checkout page → the web server's word."""
        await self.user.send_text("/menu")
        menu = await self.wait("Что сделаем?")
        amounts = await self.tap(menu, "💰 Оплатить / Баланс", "На сколько пополнить?")
        invoice = await self.tap(amounts, f"{rubles} ₽", "готов")
        mark = self.user.mark
        await self.pay(invoice)
        return await self.wait(f"Баланс пополнен на {rubles} ₽", since=mark)

    async def pay(self, invoice: Message) -> None:
        """The payer opens "💳 Перейти к оплате" and presses "Оплатить"; YooKassa (the
        emulator) notifies the web server, which credits the payment."""
        url = invoice.button("💳 Перейти к оплате").url
        assert url is not None
        await self.yk.pay(YooKassaEmulatorClient.payment_id_from_url(url))

    async def account(self) -> User:
        async with self.sessionmaker() as session:
            found = await session.scalar(select(User).where(User.telegram_id == self.user.user_id))
            assert found is not None
            return found

    async def holdings(self) -> list[UserPlan]:
        account = await self.account()
        async with self.sessionmaker() as session:
            query = select(UserPlan).where(UserPlan.user_id == account.id).order_by(UserPlan.id)
            return list((await session.scalars(query)).all())

    async def operations(self) -> list[Operation]:
        account = await self.account()
        async with self.sessionmaker() as session:
            query = select(Operation).where(Operation.user_id == account.id)
            return list((await session.scalars(query.order_by(Operation.id))).all())

    async def payments(self) -> list[Payment]:
        account = await self.account()
        async with self.sessionmaker() as session:
            query = select(Payment).where(Payment.user_id == account.id)
            return list((await session.scalars(query.order_by(Payment.id))).all())

    async def ledger(self) -> list[tuple[str, int, int, int]]:
        """The user's entries, oldest first: (kind, kopecks, free operations, units)."""
        account = await self.account()
        async with self.sessionmaker() as session:
            rows = await session.execute(
                select(
                    LedgerEntry.kind,
                    LedgerEntry.amount,
                    LedgerEntry.free_delta,
                    LedgerEntry.units_delta,
                )
                .where(LedgerEntry.user_id == account.id)
                .order_by(LedgerEntry.id)
            )
            return [tuple(row) for row in rows]  # type: ignore[misc]

    async def notices(self) -> list[tuple[str, str | None]]:
        """The user's messages about money and plans in the outbox: (kind, outcome)."""
        account = await self.account()
        async with self.sessionmaker() as session:
            rows = await session.execute(
                select(PaymentNotice.kind, PaymentNotice.outcome)
                .where(PaymentNotice.user_id == account.id)
                .order_by(PaymentNotice.id)
            )
            return [tuple(row) for row in rows]  # type: ignore[misc]

    async def time_travel(self, holding_id: int) -> None:
        """TIME TRAVEL, and the only hand-made write of these tests: the holding's period
        (or a package's life) is made to have ended a minute ago, as if that much time had
        passed. Everything that follows — the end, the ledger entry, the message — is the
        product's own doing."""
        async with self.sessionmaker() as session:
            moved = await session.execute(
                text(
                    "UPDATE user_plans SET ends_at = now() - interval '1 minute' "
                    "WHERE id = :id AND status = 'active'"
                ),
                {"id": holding_id},
            )
            await session.commit()
        assert moved.rowcount == 1

    def rolled_over_by_the_worker(self) -> int:
        """How many times the worker's plans pass rolled a user over (its log says so)."""
        [worker] = self.stack.workers
        return worker.log_path.read_text(errors="replace").count("users rolled over")

    async def wait_rolled_over_by_the_worker(self, count: int) -> None:
        """Until the worker's log says its pass rolled over ``count`` times (the line is
        written when the pass ends, after its messages went out)."""
        deadline = asyncio.get_running_loop().time() + WAIT
        while self.rolled_over_by_the_worker() < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the worker's pass did not roll over\n{self.stack.logs()}")
            await asyncio.sleep(0.1)
        assert self.rolled_over_by_the_worker() == count


@pytest.fixture
async def journey(plans_stack: ChaosStack, engine: AsyncEngine):  # type: ignore[no-untyped-def]
    """``await journey(telegram_id)`` → that user's Journey on the shared stack."""
    tg = TelegramEmulatorClient(plans_stack.tg_url, token=TOKEN)
    yk = YooKassaEmulatorClient(plans_stack.yk_url)

    async def make(telegram_id: int) -> Journey:
        plans_stack.check_alive()
        return Journey(plans_stack, engine, tg, yk, tg.user(telegram_id, first_name="Аня"))

    try:
        yield make
    finally:
        await tg.close()
        await yk.close()
        plans_stack.check_alive()


def _lines(message: Message) -> list[str]:
    return [line.strip() for line in message.text.splitlines() if line.strip()]


def _undated(message: Message) -> list[str]:
    """A /history page's lines without their "07.12.2026 13:11 · " (Moscow time)."""
    return [re.sub(r"^\d\d\.\d\d\.\d{4} \d\d:\d\d · ", "", line) for line in _lines(message)]


async def test_package_and_subscription_bought_used_canceled_and_expired(
    journey, photo: bytes
) -> None:
    me = await journey(31001)
    welcome = await me.say("/start", "Бесплатных операций: 2 из 2")
    assert "📋 Тарифы" in welcome.button_texts

    # The two free operations first (SPENDING_ORDER starts with them).
    _, first = await me.upscale(photo, "🎁 Бесплатная операция — осталось 1 из 2.")
    assert "Использована бесплатная операция. Осталось бесплатных: 1. Баланс: 0 ₽." in first.text
    _, second = await me.upscale(photo, "🎁 Бесплатная операция — осталось 0 из 2.")
    assert "Осталось бесплатных: 0. Баланс: 0 ₽." in second.text

    # A top-up by card: 100 ₽.
    credited = await me.top_up(100)
    assert "Текущий баланс: 100 ₽." in credited.text

    # /plans: buy the package from the balance.
    screen = await me.say("/plans", "Ваш тариф: Бесплатный")
    assert "💰 Баланс: 100 ₽" in screen.text
    assert "Пакет 10 операций — 80 ₽: 10 операций, действует 90 дней" in screen.text
    card = await me.tap(screen, "Пакет 10 операций — 80 ₽", "10 операций, действует 90 дней.")
    bought = await me.tap(card, "💰 Купить с баланса — 80 ₽", "✅ Куплен «Пакет 10 операций»")
    [package] = await me.holdings()
    pack_until = date_text(package.ends_at, "ru")
    assert bought.text == (
        f"✅ Куплен «Пакет 10 операций»: 10 операций, до {pack_until}. "
        "Списано 80 ₽, на балансе 20 ₽."
    )

    # An operation: paid from the package, the result says what is left.
    _, result = await me.upscale(photo, "📦 Списано 1 операция из пакета, осталось 9.")
    assert "Списано 1 операция из пакета, осталось 9. Баланс: 20 ₽." in result.text

    # The subscription, by card: the payment's notification credits it and buys the plan.
    screen = await me.say("/plans", "📦 Пакет 10 операций: осталось 9 операций")
    card = await me.tap(screen, "Про — 199 ₽", "30 операций в месяц")
    invoice = await me.tap(card, "💳 Оплатить картой — 199 ₽", "Счёт на 199 ₽ за «Про» готов")
    mark = me.user.mark
    await me.pay(invoice)
    told = await me.wait("✅ Оплата 199 ₽ получена", since=mark)
    subscription = next(h for h in await me.holdings() if h.kind == "subscription")
    sub_until = date_text(subscription.ends_at, "ru")
    assert told.text == (
        f"✅ Оплата 199 ₽ получена: подписка «Про» подключена до {sub_until}, "
        "30 операций на период.\nНа балансе 20 ₽."
    )

    # The next operation: from the quota (SPENDING_ORDER: subscription before package).
    _, result = await me.upscale(photo, "📊 Списано 1 операция из подписки, осталось 29.")
    assert "Списано 1 операция из подписки, осталось 29. Баланс: 20 ₽." in result.text

    # /balance: rubles, free operations, the quota and the package.
    balance = await me.say("/balance", "Баланс:")
    assert _lines(balance) == [
        "💰 Баланс: 20 ₽",
        "🎁 Бесплатных операций: 0 из 2",
        "💳 Цена операции: 10 ₽",
        f"📊 Подписка «Про»: осталось 29 из 30, обновится {sub_until}",
        f"📦 Пакет 10 операций: осталось 9 операций, до {pack_until}",
        "💳 Со скидкой вашего тарифа — 9 ₽ за операцию (−10 %)",
    ]

    # Cancel: auto-renewal off, from /plans.
    mine = await me.say("/plans", "Ваш тариф: Про")
    assert f"📊 Осталось 29 из 30 — обновится {sub_until}" in mine.text
    assert f"🔁 Продлится {sub_until}: 199 ₽ с баланса" in mine.text
    query = await me.user.press(mine, text="⏹ Выключить автопродление")
    answer = await me.user.wait_for_answer(query, WAIT)
    assert answer["text"] == (
        f"⏹ Автопродление выключено. «Про» действует до {sub_until}, потом — бесплатный тариф."
    )
    off = await me.wait(f"⏹ Автопродление выключено: тариф закончится {sub_until}")
    assert f"📊 Осталось 29 из 30 — до {sub_until}" in off.text  # no reset: it ends then
    balance = await me.say("/balance", "Баланс:")
    assert f"📊 Подписка «Про»: осталось 29 из 30, до {sub_until}" in balance.text

    # A month passes: the worker's plans pass ends the subscription and tells the user.
    mark, passes = me.user.mark, me.rolled_over_by_the_worker()
    await me.time_travel(subscription.id)
    ended = await me.wait("закончилась", since=mark)
    await me.wait_rolled_over_by_the_worker(passes + 1)
    assert ended.text == (
        "Подписка «Про» закончилась: автопродление было выключено. "
        "Вы на бесплатном тарифе; подключить снова — /plans."
    )
    screen = await me.say("/plans", "Ваш тариф: Бесплатный")
    assert f"📦 Пакет 10 операций: осталось 9 операций, до {pack_until}" in screen.text
    assert "💳 Сверх тарифа — 10 ₽ за операцию" in screen.text  # Pro's discount is gone

    # On the default plan, the package pays.
    _, result = await me.upscale(photo, "📦 Списано 1 операция из пакета, осталось 8.")
    assert "из пакета, осталось 8. Баланс: 20 ₽." in result.text

    # Ninety days pass: the package expires; the user is told.
    mark, passes = me.user.mark, me.rolled_over_by_the_worker()
    await me.time_travel(package.id)
    expired = await me.wait("Срок пакета", since=mark)
    await me.wait_rolled_over_by_the_worker(passes + 1)
    assert expired.text == (
        "⌛ Срок пакета «Пакет 10 операций» истёк, неиспользованные операции сгорели. "
        "Пакеты и подписки — /plans."
    )

    # Nothing left but the balance: 10 ₽, no discount.
    _, result = await me.upscale(photo, "💳 Списано 10 ₽, на балансе 10 ₽.")
    assert "Списано 10 ₽. Баланс: 10 ₽." in result.text
    screen = await me.say("/plans", "Ваш тариф: Бесплатный")
    assert not [line for line in _lines(screen) if line.startswith("📦")]

    # /history: all of it in plain words, newest first, ten to a page.
    history = await me.say("/history", "История")
    assert history.button_texts == ["Старше ▶️", "🏠 Меню"]
    older = await me.tap(history, "Старше ▶️", "Подарок при регистрации")
    assert _undated(history)[1:] + _undated(older)[1:] == [
        "⬆️ Улучшить: −10 ₽",
        "⏹ «Пакет 10 операций» закончился: истёк срок, сгорело 8 операций",
        "⬆️ Улучшить: −1 операция из пакета «Пакет 10 операций»",
        "⏹ «Про» закончился: автопродление было выключено, сгорело 29 операций",
        "⬆️ Улучшить: −1 операция из подписки «Про»",
        "📋 Покупка «Про»: −199 ₽, +30 операций",
        "💳 Пополнение: +199 ₽",
        "⬆️ Улучшить: −1 операция из пакета «Пакет 10 операций»",
        "📋 Покупка «Пакет 10 операций»: −80 ₽, +10 операций",
        "💳 Пополнение: +100 ₽",
        "⬆️ Улучшить: −1 бесплатная операция",
        "⬆️ Улучшить: −1 бесплатная операция",
        "🎁 Подарок при регистрации: +2 бесплатные операции",
    ]

    # Each message once (the web server, the bot and the worker's passes never repeat one).
    said = [m.text for m in await me.user.bot_messages()]
    for words in ("Баланс пополнен", "Оплата 199 ₽ получена", "закончилась", "Срок пакета"):
        assert sum(words in t for t in said) == 1, words
    assert await me.notices() == [
        ("credited", "sent"),
        ("plan_bought", "sent"),
        ("plan_ended", "sent"),
        ("package_expired", "sent"),
    ]

    # The books: every counter where the story left it.
    account = await me.account()
    assert (account.balance, account.free_operations_left) == (1000, 0)
    sub, pack = sorted(await me.holdings(), key=lambda h: h.kind != "subscription")
    assert (sub.status, sub.end_reason, sub.units_left, sub.auto_renew) == (
        "ended",
        "canceled",
        0,
        False,
    )
    assert (pack.status, pack.end_reason, pack.units_left) == ("ended", "expired", 0)
    payments = await me.payments()
    assert [(p.amount, p.status) for p in payments] == [(10000, "succeeded"), (19900, "succeeded")]
    assert (sub.payment_id, pack.payment_id) == (payments[1].id, None)
    assert [(op.funding, op.units, op.price, op.holding_id) for op in await me.operations()] == [
        ("free", 1, 0, None),
        ("free", 1, 0, None),
        ("package", 1, 0, pack.id),
        ("subscription", 1, 0, sub.id),
        ("package", 1, 0, pack.id),
        ("balance", 1, 1000, None),
    ]
    assert {op.status for op in await me.operations()} == {"succeeded"}
    assert await me.ledger() == [
        ("signup", 0, 2, 0),
        ("charge", 0, -1, 0),
        ("charge", 0, -1, 0),
        ("topup", 10000, 0, 0),
        ("plan_purchase", -8000, 0, 10),
        ("charge", 0, 0, -1),
        ("topup", 19900, 0, 0),
        ("plan_purchase", -19900, 0, 30),
        ("charge", 0, 0, -1),
        ("plan_end", 0, 0, -29),
        ("charge", 0, 0, -1),
        ("plan_end", 0, 0, -8),
        ("charge", -1000, 0, 0),
    ]


async def test_seed_001_free_operations_then_an_upgrade_mid_way_then_the_quota(
    journey, photo: bytes
) -> None:
    """Seed 001's use case: a new user gets free operations, sees the offer under a result,
    pays for the subscription mid-way, uses up the free operations first (buying kept them),
    then the subscription's quota. A month later the balance does not cover the renewal:
    back on the free plan, told so with a top-up button (seed 003)."""
    me = await journey(31002)
    await me.say("/start", "Бесплатных операций: 2 из 2")

    _, result = await me.upscale(photo, "🎁 Бесплатная операция — осталось 1 из 2.")
    assert _lines(result)[1:] == [
        "Использована бесплатная операция. Осталось бесплатных: 1. Баланс: 0 ₽.",
        "💡 Осталась последняя бесплатная операция. В тарифах операции дешевле: /plans",
    ]

    # The upgrade, from the offer: not enough money, a top-up, then Pro from the balance.
    screen = await me.tap(result, "📋 Тарифы", "Ваш тариф: Бесплатный")
    assert "🎁 Бесплатных операций: 1" in screen.text
    card = await me.tap(screen, "Про — 199 ₽", "30 операций в месяц")
    short = await me.tap(card, "💰 Купить с баланса — 199 ₽", "стоит 199 ₽, а на балансе 0 ₽")
    amounts = await me.tap(short, "💳 Пополнить баланс", "На сколько пополнить?")
    invoice = await me.tap(amounts, "300 ₽", "готов")
    mark = me.user.mark
    await me.pay(invoice)
    await me.wait("Баланс пополнен на 300 ₽", since=mark)
    screen = await me.say("/plans", "Ваш тариф: Бесплатный")
    card = await me.tap(screen, "Про — 199 ₽", "30 операций в месяц")
    bought = await me.tap(card, "💰 Купить с баланса — 199 ₽", "✅ Подключён тариф «Про»")
    [pro] = await me.holdings()
    until = date_text(pro.ends_at, "ru")
    assert bought.text == (
        f"✅ Подключён тариф «Про»: 30 операций до {until}. Списано 199 ₽, на балансе 101 ₽."
    )

    # The free operation left goes first (SPENDING_ORDER), untouched by the purchase; no
    # offer under a subscriber's result.
    _, result = await me.upscale(photo, "🎁 Бесплатная операция — осталось 0 из 2.")
    assert _lines(result)[1:] == [
        "Использована бесплатная операция. Осталось бесплатных: 0. Баланс: 101 ₽."
    ]
    # Then the quota.
    _, result = await me.upscale(photo, "📊 Списано 1 операция из подписки, осталось 29.")
    assert _lines(result)[1:] == ["Списано 1 операция из подписки, осталось 29. Баланс: 101 ₽."]
    mine = await me.say("/plans", "Ваш тариф: Про")
    assert _lines(mine)[:5] == [
        "📋 Ваш тариф: Про — 199 ₽ в месяц",
        f"📊 Осталось 29 из 30 — обновится {until}",
        f"🔁 Продлится {until}: 199 ₽ с баланса",
        "🎁 Бесплатных операций: 0",
        "💰 Баланс: 101 ₽",
    ]

    # A month later the renewal takes Pro's price from the balance: 101 ₽ is not enough.
    # The worker's pass ends it, and the user, back on the free plan, gets a top-up button.
    mark, passes = me.user.mark, me.rolled_over_by_the_worker()
    await me.time_travel(pro.id)
    fell_back = await me.wait("не продлена", since=mark)
    await me.wait_rolled_over_by_the_worker(passes + 1)
    assert fell_back.text == (
        "⚠️ Подписка «Про» не продлена: продление стоит 199 ₽, а на балансе 101 ₽. "
        "Вы перешли на бесплатный тариф.\n"
        "Пополните баланс и подключите подписку снова в /plans."
    )
    assert fell_back.button_texts == ["💳 Пополнить баланс"]
    await me.tap(fell_back, "💳 Пополнить баланс", "На сколько пополнить?")
    screen = await me.say("/plans", "Ваш тариф: Бесплатный")
    assert "💰 Баланс: 101 ₽" in screen.text

    account = await me.account()
    assert (account.balance, account.free_operations_left) == (10100, 0)
    [pro] = await me.holdings()
    assert (pro.status, pro.end_reason, pro.units_left) == ("ended", "no_money", 0)
    assert [(op.funding, op.holding_id, op.period_no) for op in await me.operations()] == [
        ("free", None, None),
        ("free", None, None),
        ("subscription", pro.id, 1),
    ]
    assert await me.ledger() == [
        ("signup", 0, 2, 0),
        ("charge", 0, -1, 0),
        ("topup", 30000, 0, 0),
        ("plan_purchase", -19900, 0, 30),
        ("charge", 0, -1, 0),
        ("charge", 0, 0, -1),
        ("plan_end", 0, 0, -29),
    ]
