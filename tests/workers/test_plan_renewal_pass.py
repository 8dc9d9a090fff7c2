"""The scheduled plans pass (workers.plans) against PostgreSQL and the Telegram emulator: every
due user rolled over once and told at once (renewed; fell back to the free plan with a top-up
button; package expired); the pass and a roll-over on read, or two passes, at the same time
give one renewal; a running worker's maintenance step runs the pass."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select, text

from billing import accounts, plans
from billing.db import make_engine, make_sessionmaker
from billing.models import LedgerEntry, LedgerKind, PaymentNotice, User, UserPlan, utcnow
from bot.callbacks import Menu
from workers.notices import TOPUP_CALLBACK, send_due_notices
from workers.plans import roll_over_due

LONG_AGO = timedelta(days=40)


async def _customer(h, user, *, balance: int, plan: str | None = None) -> int:
    await user.send_text("/start")  # the chat exists: the bot may write to it
    async with h.sessionmaker() as session:
        account, _ = await accounts.get_or_create_user(
            session, telegram_id=user.user_id, free_operations=0, language=user.language
        )
        if balance:
            await accounts.adjust(session, user_id=account.id, amount=balance, reason="test")
        if plan is not None:
            await plans.buy_plan_from_balance(
                session,
                user_id=account.id,
                plan_code=plan,
                request_key=f"test:{user.user_id}:{plan}",
                now=utcnow() - LONG_AGO - timedelta(days=60 if plan == "pack10" else 0),
            )
        await session.commit()
        return account.id


async def _count(h, kind: LedgerKind, user_id: int) -> int:
    async with h.sessionmaker() as session:
        return await session.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.kind == kind.value, LedgerEntry.user_id == user_id)
        )


async def _open_notices(h) -> list[str]:
    async with h.sessionmaker() as session:
        rows = await session.scalars(
            select(PaymentNotice.key).where(PaymentNotice.done_at.is_(None))
        )
        return list(rows.all())


def test_the_top_up_button_is_the_bots_own() -> None:
    assert TOPUP_CALLBACK == Menu(action="topup").pack()


async def test_the_pass_rolls_over_every_due_user_and_tells_each_at_once(harness_factory):
    h = harness_factory()
    rich, poor, packer, idle = h.user(), h.user(), h.user(language="en"), h.user()
    rich_id = await _customer(h, rich, balance=50_000, plan="pro")
    poor_id = await _customer(h, poor, balance=19_900, plan="pro")  # 0 ₽ left
    packer_id = await _customer(h, packer, balance=8_000, plan="pack10")
    await _customer(h, idle, balance=100)

    done = await roll_over_due(h.sessionmaker, h.bot, h.settings)

    assert sorted((e.user_id, e.kind) for e in done.events) == sorted(
        [(rich_id, "renewed"), (poor_id, "ended"), (packer_id, "expired")]
    )
    assert [r.outcome for r in done.sent] == ["sent"] * 3
    assert await _open_notices(h) == []

    renewed = await rich.wait_for_text("продлена до")
    assert "Подписка «Про»" in renewed.text and "Списано 199 ₽" in renewed.text
    fell_back = await poor.wait_for_text("не продлена")
    assert "бесплатный тариф" in fell_back.text
    assert [(b.text, b.callback_data) for row in fell_back.buttons for b in row] == [
        ("💳 Пополнить баланс", "menu:topup")
    ]
    expired = await packer.wait_for_text("has expired")
    assert "“Pack of 10 operations”" in expired.text
    assert await idle.bot_messages() == []

    async with h.sessionmaker() as session:
        poor_plan = await session.scalar(select(UserPlan).where(UserPlan.user_id == poor_id))
        assert (poor_plan.status, poor_plan.end_reason) == ("ended", "no_money")
        assert (await accounts.get_user(session, user_id=rich_id)).balance == 50_000 - 2 * 19_900
    # The next pass finds nothing.
    again = await roll_over_due(h.sessionmaker, h.bot, h.settings)
    assert again.events == [] and again.users == 0


async def test_two_passes_at_once_renew_once_and_send_one_message(harness_factory):
    h = harness_factory()
    user = h.user()
    user_id = await _customer(h, user, balance=50_000, plan="pro")
    results = await asyncio.gather(
        *(roll_over_due(h.sessionmaker, h.bot, h.settings) for _ in range(3))
    )
    assert sum(len(r.events) for r in results) == 1
    assert await _count(h, LedgerKind.RENEWAL, user_id) == 1
    await user.wait_for_text("продлена до")
    assert len(await user.bot_messages()) == 1


async def _waiting_for_a_lock(h) -> int:
    """Connections of this test run's database waiting for a lock (a row another holds)."""
    async with h.sessionmaker() as session:
        return await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )


async def test_two_workers_racing_for_one_due_subscription_renew_it_once(harness_factory):
    """Two workers (each its own engine, as two processes would have) run the pass for the
    same due subscription, and both are made to reach it at once: a transaction in flight
    holds the user's row and the holding's row until both wait on the database, then lets
    go. One renews, the other finds nothing due — no error, no second renewal — although the
    balance could pay four more periods."""
    h = harness_factory()
    user = h.user()
    user_id = await _customer(h, user, balance=100_000, plan="pro")  # 80 100 left
    engines = [make_engine(h.settings.DATABASE_URL, pool_size=2) for _ in range(2)]
    try:
        async with h.sessionmaker() as in_flight:
            await in_flight.execute(select(User.id).where(User.id == user_id).with_for_update())
            await in_flight.execute(
                select(UserPlan.id).where(UserPlan.user_id == user_id).with_for_update()
            )
            passes = [
                asyncio.ensure_future(roll_over_due(make_sessionmaker(e), h.bot, h.settings))
                for e in engines
            ]

            async def both_wait() -> bool:
                return await _waiting_for_a_lock(h) == 2

            await h.wait_until(both_wait, "both workers to wait for the user's rows")
            await in_flight.rollback()
        results = await asyncio.gather(*passes)
    finally:
        for engine in engines:
            await engine.dispose()
    assert [r.failed for r in results] == [[], []]
    assert sorted(len(r.events) for r in results) == [0, 1]
    assert await _count(h, LedgerKind.RENEWAL, user_id) == 1
    async with h.sessionmaker() as session:
        assert (await accounts.get_user(session, user_id=user_id)).balance == 100_000 - 2 * 19_900
        [holding] = (
            await session.scalars(select(UserPlan).where(UserPlan.user_id == user_id))
        ).all()
        assert (holding.status, holding.period_no) == ("active", 2)
    await user.wait_for_text("продлена до")
    assert len(await user.bot_messages()) == 1


async def test_a_roll_over_on_read_and_the_pass_at_once_renew_once(harness_factory):
    h = harness_factory()
    user = h.user()
    user_id = await _customer(h, user, balance=50_000, plan="pro")

    async def on_read() -> list[plans.RollOverEvent]:
        async with h.sessionmaker() as session:
            events = await plans.roll_over(session, h.settings, user_id=user_id)
            await session.commit()
            return events

    read, passed = await asyncio.gather(
        on_read(), roll_over_due(h.sessionmaker, h.bot, h.settings)
    )
    assert len(read) + len(passed.events) == 1
    assert await _count(h, LedgerKind.RENEWAL, user_id) == 1
    async with h.sessionmaker() as session:
        assert (await accounts.get_user(session, user_id=user_id)).balance == 50_000 - 2 * 19_900


async def test_a_running_worker_renews_due_plans_in_its_maintenance_step(harness_factory):
    h = harness_factory()
    user = h.user()
    user_id = await _customer(h, user, balance=50_000, plan="pro")
    h.start_worker()
    await user.wait_for_text("продлена до", timeout=60)
    assert await _count(h, LedgerKind.RENEWAL, user_id) == 1


async def test_a_message_left_by_a_roll_over_on_read_is_sent_by_the_maintenance_pass(
    harness_factory,
):
    h = harness_factory()
    user = h.user(language="en")
    user_id = await _customer(h, user, balance=19_900, plan="pro")
    async with h.sessionmaker() as session:  # the bot's read, which does not send
        [event] = await plans.roll_over(session, h.settings, user_id=user_id)
        await session.commit()
    assert await _open_notices(h) == [event.notice_key]
    grace = timedelta(seconds=h.settings.PAYMENT_NOTICE_GRACE_SECONDS)
    # Within the grace period it is the bot's to send: the pass leaves it.
    assert await send_due_notices(h.sessionmaker, h.bot, grace=grace) == []
    [result] = await send_due_notices(
        h.sessionmaker, h.bot, grace=grace, now=utcnow() + grace + timedelta(seconds=1)
    )
    assert result.outcome == "sent"
    message = await user.wait_for_text("was not renewed")
    assert "the renewal costs 199 ₽ and your balance is 0 ₽" in message.text
    assert [b.callback_data for row in message.buttons for b in row] == ["menu:topup"]
    assert await _open_notices(h) == []
