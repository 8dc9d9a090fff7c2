"""Buying a plan from the balance (billing.plans.buy_plan_from_balance): one transaction — the
conditional debit, the holding, the plan_purchase entry — once per request; nothing written
when the balance is short, the plan archived or the request a repeat; trials once per plan."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from billing import accounts, plans
from billing.errors import DuplicateRequest, InsufficientFunds
from billing.models import LedgerEntry, LedgerKind, UserPlan
from billing.plans import PlanNotForSale
from tests.billing.helpers import new_user
from tests.conftest import make_settings

T0 = datetime(2027, 1, 31, 12, 0, tzinfo=UTC)


async def _buy(sm, user_id: int, code: str, key: str, now: datetime = T0):
    async with sm() as session:
        result = await plans.buy_plan_from_balance(
            session, user_id=user_id, plan_code=code, request_key=key, now=now
        )
        await session.commit()
        return result


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


async def _balance(sm, user_id: int) -> tuple[int, int]:
    async with sm() as session:
        user = await accounts.get_user(session, user_id=user_id)
    return user.balance, user.free_left


async def test_a_subscription_bought_from_the_balance_is_one_debit_one_holding_one_entry(
    sessionmaker,
):
    user_id = await new_user(sessionmaker, free=2, balance=30_000)
    result = await _buy(sessionmaker, user_id, "pro", "10:1")
    assert (result.status, result.price, result.units, result.trial) == (
        "bought",
        19900,
        30,
        False,
    )
    # A month after 31 January is the last day of February.
    assert result.ends_at == datetime(2027, 2, 28, 12, 0, tzinfo=UTC)
    assert (result.balance_after, result.free_after) == (10_100, 2)  # free operations kept
    assert await _balance(sessionmaker, user_id) == (10_100, 2)

    [holding] = await _holdings(sessionmaker, user_id)
    assert (holding.kind, holding.status, holding.units_left, holding.units_per_period) == (
        "subscription",
        "active",
        30,
        30,
    )
    assert (holding.price, holding.period, holding.period_no, holding.auto_renew) == (
        19900,
        "month",
        1,
        True,
    )
    [entry] = await _entries(sessionmaker, user_id, LedgerKind.PLAN_PURCHASE)
    assert (entry.amount, entry.free_delta, entry.units_delta, entry.units_after) == (
        -19900,
        0,
        30,
        30,
    )
    assert (entry.holding_id, entry.plan_id) == (holding.id, holding.plan_id)
    assert entry.balance_after == 10_100
    assert entry.idempotency_key == "plan_purchase:10:1"


async def test_a_short_balance_buys_nothing_and_says_how_much(sessionmaker):
    user_id = await new_user(sessionmaker, balance=19_899)
    with pytest.raises(InsufficientFunds) as caught:
        await _buy(sessionmaker, user_id, "pro", "10:2")
    assert (caught.value.price, caught.value.balance) == (19900, 19_899)
    assert await _holdings(sessionmaker, user_id) == []
    assert await _entries(sessionmaker, user_id, LedgerKind.PLAN_PURCHASE) == []
    assert await _balance(sessionmaker, user_id) == (19_899, 0)


async def test_one_request_buys_once_even_when_delivered_many_times_at_once(sessionmaker):
    user_id = await new_user(sessionmaker, balance=100_000)

    async def deliver() -> str:
        async with sessionmaker() as session:
            try:
                await plans.buy_plan_from_balance(
                    session, user_id=user_id, plan_code="pack10", request_key="77:5", now=T0
                )
            except DuplicateRequest:
                await session.rollback()
                return "duplicate"
            await session.commit()
            return "bought"

    results = await asyncio.gather(*(deliver() for _ in range(8)))
    assert results.count("bought") == 1
    assert len(await _holdings(sessionmaker, user_id)) == 1
    assert await _balance(sessionmaker, user_id) == (92_000, 0)
    # A later repeat of the same update: refused, nothing moves.
    with pytest.raises(DuplicateRequest):
        await _buy(sessionmaker, user_id, "pack10", "77:5")
    assert await _balance(sessionmaker, user_id) == (92_000, 0)


async def test_an_archived_plan_and_the_default_plan_are_not_for_sale(sessionmaker):
    user_id = await new_user(sessionmaker, balance=100_000)
    async with sessionmaker() as session:
        await plans.archive_plan(session, "pack10")
        await session.commit()
    for code, reason in (("pack10", "archived"), ("free", "default")):
        with pytest.raises(PlanNotForSale) as caught:
            await _buy(sessionmaker, user_id, code, f"1:{code}")
        assert caught.value.reason == reason
    assert await _holdings(sessionmaker, user_id) == []
    assert await _balance(sessionmaker, user_id) == (100_000, 0)


async def test_a_package_expires_after_its_days_and_adds_its_free_operations(sessionmaker):
    user_id = await new_user(sessionmaker, free=1, balance=10_000)
    async with sessionmaker() as session:
        await plans.edit_plan(session, "pack10", free_operations=2)
        await session.commit()
    result = await _buy(sessionmaker, user_id, "pack10", "3:1")
    assert result.ends_at == T0 + timedelta(days=90)
    assert (result.free_operations, result.free_after, result.balance_after) == (2, 3, 2000)
    [entry] = await _entries(sessionmaker, user_id, LedgerKind.PLAN_PURCHASE)
    assert (entry.amount, entry.free_delta, entry.units_delta) == (-8000, 2, 10)
    [holding] = await _holdings(sessionmaker, user_id)
    assert (holding.kind, holding.period, holding.auto_renew, holding.units_left) == (
        "package",
        None,
        False,
        10,
    )


async def test_a_package_is_bought_beside_an_active_subscription(sessionmaker):
    user_id = await new_user(sessionmaker, balance=40_000)
    await _buy(sessionmaker, user_id, "pro", "4:1")
    await _buy(sessionmaker, user_id, "pack10", "4:2")
    await _buy(sessionmaker, user_id, "pack10", "4:3")
    kinds = [(h.kind, h.status) for h in await _holdings(sessionmaker, user_id)]
    assert kinds == [("subscription", "active"), ("package", "active"), ("package", "active")]
    assert await _balance(sessionmaker, user_id) == (40_000 - 19_900 - 16_000, 0)


async def test_a_second_subscription_is_a_change_at_the_renewal_and_costs_nothing_now(
    sessionmaker,
):
    user_id = await new_user(sessionmaker, balance=100_000)
    async with sessionmaker() as session:
        await plans.add_plan(
            session,
            code="max",
            kind="subscription",
            name_ru="Макс",
            name_en="Max",
            price=49_900,
            period="month",
            units=100,
        )
        await session.commit()
    first = await _buy(sessionmaker, user_id, "pro", "5:1")
    changed = await _buy(sessionmaker, user_id, "max", "5:2")
    assert (changed.status, changed.price, changed.holding_id) == (
        "scheduled",
        0,
        first.holding_id,
    )
    [holding] = await _holdings(sessionmaker, user_id)
    assert holding.next_plan_id == changed.plan_id and holding.auto_renew
    assert await _balance(sessionmaker, user_id) == (100_000 - 19_900, 0)

    # Buying the plan one holds drops the change and keeps it renewing.
    async with sessionmaker() as session:
        await plans.set_auto_renew(session, user_id=user_id, on=False)
        await session.commit()
    same = await _buy(sessionmaker, user_id, "pro", "5:3")
    assert same.status == "already_active"
    [holding] = await _holdings(sessionmaker, user_id)
    assert (holding.next_plan_id, holding.auto_renew) == (None, True)
    assert len(await _entries(sessionmaker, user_id, LedgerKind.PLAN_PURCHASE)) == 1


async def test_a_trial_is_free_once_per_user_and_plan(sessionmaker, any_db_url):
    user_id = await new_user(sessionmaker, balance=50_000)
    async with sessionmaker() as session:
        await plans.edit_plan(session, "pro", trial_days=7)
        await session.commit()
    trial = await _buy(sessionmaker, user_id, "pro", "6:1")
    assert (trial.trial, trial.price, trial.units) == (True, 0, 30)
    assert trial.ends_at == T0 + timedelta(days=7)
    assert await _balance(sessionmaker, user_id) == (50_000, 0)
    [entry] = await _entries(sessionmaker, user_id, LedgerKind.PLAN_PURCHASE)
    assert (entry.amount, entry.units_delta) == (0, 30)  # recorded though no money moved

    # The trial is cancelled and runs out; buying the plan again is paid.
    async with sessionmaker() as session:
        await plans.set_auto_renew(session, user_id=user_id, on=False)
        await session.commit()
    async with sessionmaker() as session:
        await plans.roll_over(
            session, make_settings(any_db_url), user_id=user_id, now=T0 + timedelta(days=8)
        )
        await session.commit()
    again = await _buy(sessionmaker, user_id, "pro", "6:2", now=T0 + timedelta(days=9))
    assert (again.trial, again.price) == (False, 19_900)
    assert await _balance(sessionmaker, user_id) == (50_000 - 19_900, 0)


async def test_two_different_subscriptions_bought_at_once_give_one_holding_and_one_change(
    sessionmaker,
):
    user_id = await new_user(sessionmaker, balance=100_000)
    async with sessionmaker() as session:
        await plans.add_plan(
            session,
            code="lite",
            kind="subscription",
            name_ru="Лайт",
            name_en="Lite",
            price=9_900,
            period="week",
            units=10,
        )
        await session.commit()
    results = await asyncio.gather(
        _buy(sessionmaker, user_id, "pro", "8:1"), _buy(sessionmaker, user_id, "lite", "8:2")
    )
    assert sorted(r.status for r in results) == ["bought", "scheduled"]
    holdings = await _holdings(sessionmaker, user_id)
    assert len(holdings) == 1
    bought = next(r for r in results if r.status == "bought")
    assert await _balance(sessionmaker, user_id) == (100_000 - bought.price, 0)
    async with sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.user_id == user_id)
        )
    assert count == 2  # the grant and one purchase
