"""The life of a holding (billing.plans.roll_over): a subscription renews from the balance at
the plan's current price, once per period however many callers try at once; it ends (units
to 0, the user back on the default plan, told) when renewal is off, the plan archived or the
money short; a chosen change starts at the renewal; packages expire; free operations are
topped up once per FREE_OPERATIONS_RENEW_DAYS."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from billing import accounts, plans
from billing.models import LedgerEntry, LedgerKind, PaymentNotice, User, UserPlan, utcnow
from tests.billing.helpers import new_user
from tests.conftest import make_settings

T0 = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)
MONTH_LATER = datetime(2027, 4, 10, 9, 0, tzinfo=UTC)


async def _buy(sm, user_id: int, code: str, key: str, now: datetime = T0):
    async with sm() as session:
        result = await plans.buy_plan_from_balance(
            session, user_id=user_id, plan_code=code, request_key=key, now=now
        )
        await session.commit()
        return result


async def _roll(sm, settings, user_id: int, now: datetime) -> list[plans.RollOverEvent]:
    async with sm() as session:
        events = await plans.roll_over(session, settings, user_id=user_id, now=now)
        await session.commit()
        return events


async def _holdings(sm, user_id: int) -> list[UserPlan]:
    async with sm() as session:
        rows = await session.scalars(
            select(UserPlan).where(UserPlan.user_id == user_id).order_by(UserPlan.id)
        )
        return list(rows.all())


async def _entries(sm, user_id: int, kind: LedgerKind) -> list[LedgerEntry]:
    async with sm() as session:
        rows = await session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.user_id == user_id, LedgerEntry.kind == kind.value)
            .order_by(LedgerEntry.id)
        )
        return list(rows.all())


async def _notices(sm, user_id: int) -> list[PaymentNotice]:
    async with sm() as session:
        rows = await session.scalars(
            select(PaymentNotice)
            .where(PaymentNotice.user_id == user_id)
            .order_by(PaymentNotice.id)
        )
        return list(rows.all())


async def _balance(sm, user_id: int) -> int:
    async with sm() as session:
        return (await accounts.get_user(session, user_id=user_id)).balance


async def test_nothing_due_is_one_read_and_no_event(sessionmaker, any_db_url):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, balance=50_000)
    await _buy(sessionmaker, user_id, "pro", "1:1")
    assert await _roll(sessionmaker, settings, user_id, T0 + timedelta(days=30)) == []
    [holding] = await _holdings(sessionmaker, user_id)
    assert holding.period_no == 1


async def test_a_subscription_renews_at_the_current_price_and_units_once(sessionmaker, any_db_url):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, balance=50_000)
    bought = await _buy(sessionmaker, user_id, "pro", "1:2")
    async with sessionmaker() as session:
        # Spend some of the quota; the operator edits the plan mid-period.
        await session.execute(
            update(UserPlan).where(UserPlan.id == bought.holding_id).values(units_left=30)
        )
        await plans.edit_plan(session, "pro", price=24_900, units=40)
        await session.commit()
    [renewed] = await _roll(sessionmaker, settings, user_id, MONTH_LATER)
    assert (renewed.kind, renewed.period_no, renewed.price, renewed.units) == (
        "renewed",
        2,
        24_900,
        40,
    )
    assert renewed.ends_at == datetime(2027, 5, 10, 9, 0, tzinfo=UTC)  # from the period's end
    assert await _balance(sessionmaker, user_id) == 50_000 - 19_900 - 24_900
    [holding] = await _holdings(sessionmaker, user_id)
    assert (holding.period_no, holding.units_left, holding.units_per_period, holding.price) == (
        2,
        40,
        40,
        24_900,
    )
    [entry] = await _entries(sessionmaker, user_id, LedgerKind.RENEWAL)
    assert entry.idempotency_key == f"renewal:{holding.id}:2"
    assert (entry.amount, entry.units_delta, entry.units_after) == (-24_900, 10, 40)
    # Asked again, by anyone, at any later moment of the same period: nothing more.
    assert await _roll(sessionmaker, settings, user_id, MONTH_LATER) == []
    assert await _roll(sessionmaker, settings, user_id, MONTH_LATER + timedelta(days=5)) == []
    assert len(await _entries(sessionmaker, user_id, LedgerKind.RENEWAL)) == 1
    [notice] = await _notices(sessionmaker, user_id)
    assert (notice.kind, notice.key, notice.amount, notice.payment_id) == (
        "plan_renewed",
        f"plan_renewed:{holding.id}:2",
        24_900,
        None,
    )
    assert (notice.plan_id, notice.holding_id) == (holding.plan_id, holding.id)


async def test_short_money_ends_the_subscription_and_tells_the_user(sessionmaker, any_db_url):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, balance=30_000)
    bought = await _buy(sessionmaker, user_id, "pro", "2:1")
    assert bought.balance_after == 10_100  # short of the next 199 ₽
    [ended] = await _roll(sessionmaker, settings, user_id, MONTH_LATER)
    assert (ended.kind, ended.reason, ended.units) == ("ended", "no_money", 30)
    [holding] = await _holdings(sessionmaker, user_id)
    assert (holding.status, holding.end_reason, holding.units_left) == ("ended", "no_money", 0)
    [entry] = await _entries(sessionmaker, user_id, LedgerKind.PLAN_END)
    assert (entry.amount, entry.units_delta, entry.units_after) == (0, -30, 0)
    assert entry.idempotency_key == f"plan_end:{holding.id}"
    assert await _balance(sessionmaker, user_id) == 10_100  # nothing taken
    [notice] = await _notices(sessionmaker, user_id)
    assert (notice.kind, notice.reason, notice.key) == (
        "plan_ended",
        "no_money",
        f"plan_ended:{holding.id}",
    )
    assert await _roll(sessionmaker, settings, user_id, MONTH_LATER + timedelta(days=40)) == []


async def test_renewal_off_or_an_archived_plan_ends_it_at_the_period_end(sessionmaker, any_db_url):
    settings = make_settings(any_db_url)
    off = await new_user(sessionmaker, telegram_id=1, balance=100_000)
    archived = await new_user(sessionmaker, telegram_id=2, balance=100_000)
    await _buy(sessionmaker, off, "pro", "3:1")
    await _buy(sessionmaker, archived, "pro", "3:2")
    async with sessionmaker() as session:
        await plans.set_auto_renew(session, user_id=off, on=False)
        await session.commit()
    # Still theirs until the period ends.
    assert await _roll(sessionmaker, settings, off, MONTH_LATER - timedelta(seconds=1)) == []
    async with sessionmaker() as session:
        await plans.archive_plan(session, "pro")
        await session.commit()
    [a] = await _roll(sessionmaker, settings, off, MONTH_LATER)
    [b] = await _roll(sessionmaker, settings, archived, MONTH_LATER)
    assert (a.kind, a.reason, b.kind, b.reason) == ("ended", "canceled", "ended", "archived")
    for user_id in (off, archived):
        assert await _balance(sessionmaker, user_id) == 100_000 - 19_900
        assert await _entries(sessionmaker, user_id, LedgerKind.RENEWAL) == []


async def test_a_change_chosen_mid_period_starts_at_the_renewal(sessionmaker, any_db_url):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, balance=100_000)
    async with sessionmaker() as session:
        await plans.add_plan(
            session,
            code="lite",
            kind="subscription",
            name_ru="Лайт",
            name_en="Lite",
            price=4_900,
            period="week",
            units=5,
        )
        await session.commit()
    first = await _buy(sessionmaker, user_id, "pro", "4:1")
    scheduled = await _buy(sessionmaker, user_id, "lite", "4:2", now=T0 + timedelta(days=3))
    assert scheduled.status == "scheduled"
    [changed] = await _roll(sessionmaker, settings, user_id, MONTH_LATER)
    assert (changed.kind, changed.plan_code, changed.price, changed.units) == (
        "changed",
        "lite",
        4_900,
        5,
    )
    old, new = await _holdings(sessionmaker, user_id)
    assert (old.id, old.status, old.end_reason) == (first.holding_id, "ended", "replaced")
    assert (new.id, new.status, new.period, new.units_left) == (
        changed.holding_id,
        "active",
        "week",
        5,
    )
    assert new.ends_at.replace(tzinfo=UTC) == MONTH_LATER + timedelta(weeks=1)
    assert await _balance(sessionmaker, user_id) == 100_000 - 19_900 - 4_900
    [notice] = await _notices(sessionmaker, user_id)  # one message: the change
    assert (notice.kind, notice.holding_id) == ("plan_changed", new.id)


async def test_a_package_expires_once_with_its_units(sessionmaker, any_db_url):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, balance=10_000)
    await _buy(sessionmaker, user_id, "pack10", "5:1")
    assert await _roll(sessionmaker, settings, user_id, T0 + timedelta(days=89)) == []
    [expired] = await _roll(sessionmaker, settings, user_id, T0 + timedelta(days=90))
    assert (expired.kind, expired.reason, expired.units) == ("expired", "expired", 10)
    [holding] = await _holdings(sessionmaker, user_id)
    assert (holding.status, holding.units_left) == ("ended", 0)
    assert await _roll(sessionmaker, settings, user_id, T0 + timedelta(days=91)) == []
    [notice] = await _notices(sessionmaker, user_id)
    assert (notice.kind, notice.key) == ("package_expired", f"package_expired:{holding.id}")
    assert await _balance(sessionmaker, user_id) == 2_000


async def test_a_long_lapsed_subscription_renews_one_period_from_now(sessionmaker, any_db_url):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, balance=100_000)
    await _buy(sessionmaker, user_id, "pro", "6:1")
    late = T0 + timedelta(days=100)
    [renewed] = await _roll(sessionmaker, settings, user_id, late)
    assert renewed.ends_at == datetime(2027, 7, 18, 9, 0, tzinfo=UTC)  # late + a month
    assert await _balance(sessionmaker, user_id) == 100_000 - 2 * 19_900


async def test_many_sessions_rolling_over_one_subscription_at_once_renew_it_once(
    sessionmaker, any_db_url
):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, balance=100_000)
    await _buy(sessionmaker, user_id, "pro", "7:1")
    results = await asyncio.gather(
        *(_roll(sessionmaker, settings, user_id, MONTH_LATER) for _ in range(10))
    )
    assert sorted(len(r) for r in results) == [0] * 9 + [1]
    assert len(await _entries(sessionmaker, user_id, LedgerKind.RENEWAL)) == 1
    assert await _balance(sessionmaker, user_id) == 100_000 - 2 * 19_900


async def _set_created(sm, user_id: int, when: datetime) -> None:
    async with sm() as session:
        await session.execute(update(User).where(User.id == user_id).values(created_at=when))
        await session.commit()


async def test_free_operations_are_topped_up_once_per_period(sessionmaker, any_db_url):
    settings = make_settings(any_db_url, FREE_OPERATIONS_COUNT=4, FREE_OPERATIONS_RENEW_DAYS=30)
    user_id = await new_user(sessionmaker, free=1)
    signup = utcnow() - timedelta(days=1)
    await _set_created(sessionmaker, user_id, signup)
    assert await _roll(sessionmaker, settings, user_id, signup + timedelta(days=29)) == []
    [renewed] = await _roll(sessionmaker, settings, user_id, signup + timedelta(days=31))
    assert (renewed.kind, renewed.period_no, renewed.free_delta) == ("free_renewed", 1, 3)
    assert await _roll(sessionmaker, settings, user_id, signup + timedelta(days=59)) == []
    [entry] = await _entries(sessionmaker, user_id, LedgerKind.FREE_RENEWAL)
    assert (entry.free_delta, entry.free_after, entry.idempotency_key) == (
        3,
        4,
        f"free_renewal:{user_id}:1",
    )
    # Spent down to 0 in the second period: topped up at its end, once.
    async with sessionmaker() as session:
        await accounts.adjust(session, user_id=user_id, free_delta=-4, reason="spent")
        await session.commit()
    results = await asyncio.gather(
        *(_roll(sessionmaker, settings, user_id, signup + timedelta(days=61)) for _ in range(5))
    )
    assert sorted(len(r) for r in results) == [0, 0, 0, 0, 1]
    entries = await _entries(sessionmaker, user_id, LedgerKind.FREE_RENEWAL)
    assert [(e.free_delta, e.idempotency_key) for e in entries] == [
        (3, f"free_renewal:{user_id}:1"),
        (4, f"free_renewal:{user_id}:2"),
    ]


async def test_a_user_with_enough_free_operations_is_not_topped_up_later_in_the_period(
    sessionmaker, any_db_url
):
    settings = make_settings(any_db_url, FREE_OPERATIONS_COUNT=4, FREE_OPERATIONS_RENEW_DAYS=30)
    user_id = await new_user(sessionmaker, free=4)
    signup = utcnow() - timedelta(days=1)
    await _set_created(sessionmaker, user_id, signup)
    assert await _roll(sessionmaker, settings, user_id, signup + timedelta(days=31)) == []
    async with sessionmaker() as session:
        await accounts.adjust(session, user_id=user_id, free_delta=-4, reason="spent")
        await session.commit()
    # Same period: its top-up moment has passed (nothing was missing then).
    assert await _roll(sessionmaker, settings, user_id, signup + timedelta(days=45)) == []
    assert await _entries(sessionmaker, user_id, LedgerKind.FREE_RENEWAL) == []
    [renewed] = await _roll(sessionmaker, settings, user_id, signup + timedelta(days=60))
    assert renewed.free_delta == 4


async def test_without_the_setting_free_operations_never_renew(sessionmaker, any_db_url):
    settings = make_settings(any_db_url, FREE_OPERATIONS_COUNT=4)
    user_id = await new_user(sessionmaker, free=0)
    assert await _roll(sessionmaker, settings, user_id, utcnow() + timedelta(days=400)) == []


async def test_due_users_lists_due_holdings_and_free_renewals(sessionmaker, any_db_url):
    settings = make_settings(any_db_url, FREE_OPERATIONS_RENEW_DAYS=30)
    fresh = await new_user(sessionmaker, telegram_id=11, balance=100_000)
    subscriber = await new_user(sessionmaker, telegram_id=12, balance=100_000)
    old_user = await new_user(sessionmaker, telegram_id=13)
    await _set_created(sessionmaker, old_user, utcnow() - timedelta(days=31))
    await _buy(sessionmaker, subscriber, "pro", "9:1", now=utcnow() - timedelta(days=40))
    await _buy(sessionmaker, fresh, "pack10", "9:2")
    async with sessionmaker() as session:
        due = await plans.due_holdings(session, utcnow(), 10)
        users = await plans.due_users(session, settings, now=utcnow(), limit=10)
    assert [d.user_id for d in due] == [subscriber]
    assert sorted(users) == sorted([subscriber, old_user])
