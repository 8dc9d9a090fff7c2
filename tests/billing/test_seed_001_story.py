"""Seed 001's use case end to end at the billing level, on both databases: a new user gets 10
free operations, spends four, on the fifth request pays for "Тариф2" (a subscription; the
credit path credits the payment and buys the plan in one transaction), finishes the free
operations first, then uses the plan's quota, and once the quota is spent a package and then
the balance — never half from one and half from another; every refund goes back to the source
its charge took from (a quota operation refunded after the period is over gives nothing back);
the audit is clean at every stage.

Free operations count operations, quota and packages count units: with seed 003's setting
``generate=2`` one free operation pays a whole generation, the quota pays it with 2 units."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from billing import accounts, operations, payments, plans
from billing.audit import audit
from billing.errors import InsufficientFunds
from billing.models import Funding, LedgerEntry, UserPlan, utcnow
from tests.conftest import make_settings

TARIFF2 = 29_900  # 299 ₽ a month, 6 units
PACK3 = 2_500  # 25 ₽, 3 units


@pytest.fixture
def settings(any_db_url):
    return make_settings(any_db_url, FREE_OPERATIONS_COUNT=10, OPERATION_UNITS="generate=2")


async def _in_tx(sm, work):
    async with sm() as session:
        result = await work(session)
        await session.commit()
        return result


async def _clean(sm) -> None:
    async with sm() as session:
        assert await audit(session) == []


async def _state(sm, user_id: int) -> tuple[int, int, list[tuple[str, str, int]]]:
    """(balance, free operations, [(plan, status, units left)])."""
    async with sm() as session:
        user = await accounts.get_user(session, user_id=user_id)
        rows = await session.execute(
            select(plans.Plan.code, UserPlan.status, UserPlan.units_left)
            .join(plans.Plan, plans.Plan.id == UserPlan.plan_id)
            .where(UserPlan.user_id == user_id)
            .order_by(UserPlan.id)
        )
        return user.balance, user.free_left, [tuple(r) for r in rows]


async def test_seed_001_free_first_then_the_quota_then_a_package_then_the_balance(
    sessionmaker, settings
):
    sm = sessionmaker

    async def charge(op_type: str = "upscale") -> operations.ChargeResult:
        return await _in_tx(
            sm,
            lambda s: operations.charge(s, settings, user_id=user_id, op_type=op_type),
        )

    async def refund(operation_id: int) -> operations.RefundResult:
        return await _in_tx(
            sm, lambda s: operations.refund_operation(s, operation_id=operation_id)
        )

    async def top_up(amount: int, plan_id: int | None = None):
        """The credit path: the payment credited once; a plan's payment buys the plan in the
        same transaction (billing.payments._credit_and_buy without the YooKassa call)."""
        payment = await _in_tx(
            sm,
            lambda s: payments.create_payment(s, user_id=user_id, amount=amount, currency="RUB"),
        )

        async def credit(session):
            credited = await payments.credit_payment(
                session,
                payment_id=payment.id,
                amount=amount,
                currency="RUB",
                notice=plan_id is None,
            )
            assert credited is not None
            if plan_id is None:
                return credited
            return await plans.buy_after_payment(
                session, user_id=user_id, plan_id=plan_id, payment_id=payment.id, amount=amount
            )

        return await _in_tx(sm, credit)

    # The operator's catalogue: seed 001's "Тариф2" and a small package.
    async def catalogue(session):
        tariff2 = await plans.add_plan(
            session,
            code="tariff2",
            kind="subscription",
            name_ru="Тариф2",
            name_en="Plan 2",
            price=TARIFF2,
            period="month",
            units=6,
        )
        await plans.add_plan(
            session,
            code="pack3",
            kind="package",
            name_ru="Пакет 3",
            name_en="Pack of 3",
            price=PACK3,
            units=3,
        )
        return tariff2.id

    tariff2_id = await _in_tx(sm, catalogue)

    # A new user signs up without paying: 10 free operations, on the default plan.
    async def sign_up(session):
        user, created = await accounts.get_or_create_user(
            session, telegram_id=1_001, free_operations=settings.FREE_OPERATIONS_COUNT
        )
        assert created
        return user.id

    user_id = await _in_tx(sm, sign_up)
    assert await _state(sm, user_id) == (0, 10, [])

    # Four requests, each one free operation whatever its units.
    first = [await charge(op) for op in ("upscale", "generate", "upscale", "generate")]
    assert [(c.funding, c.units, c.price) for c in first] == [
        ("free", 1, 0),
        ("free", 2, 0),
        ("free", 1, 0),
        ("free", 2, 0),
    ]
    assert await _state(sm, user_id) == (0, 6, [])
    await _clean(sm)

    # The fifth request: the user pays 299 ₽ for Тариф2 first. The free operations stay.
    note = await top_up(TARIFF2, plan_id=tariff2_id)
    assert (note.kind, note.plan_code, note.price, note.units) == (
        "plan_bought",
        "tariff2",
        TARIFF2,
        6,
    )
    assert await _state(sm, user_id) == (0, 6, [("tariff2", "active", 6)])
    await _clean(sm)

    # The remaining free operations are used first, the quota is not touched.
    rest = [await charge("generate" if i % 2 else "upscale") for i in range(6)]
    assert {c.funding for c in rest} == {Funding.FREE}
    assert await _state(sm, user_id) == (0, 0, [("tariff2", "active", 6)])
    # A failed free operation gives its free operation back — and it is used first again.
    back = await refund(rest[-1].operation_id)
    assert (back.funding, back.free_back, back.amount, back.units_back) == ("free", 1, 0, 0)
    again = await charge("generate")
    assert (again.funding, again.free_after) == ("free", 0)
    await _clean(sm)

    # Then the quota, in units: a generation takes 2, an upscale 1.
    quota = [await charge(op) for op in ("generate", "upscale", "upscale")]
    assert [(c.funding, c.units, c.units_after, c.price) for c in quota] == [
        ("subscription", 2, 4, 0),
        ("subscription", 1, 3, 0),
        ("subscription", 1, 2, 0),
    ]
    back = await refund(quota[1].operation_id)  # back to the quota, this period
    assert (back.funding, back.units_back, back.units_after, back.amount) == (
        "subscription",
        1,
        3,
        0,
    )
    last = [await charge("generate"), await charge("upscale")]
    assert [(c.funding, c.units_after) for c in last] == [("subscription", 1), ("subscription", 0)]
    assert await _state(sm, user_id) == (0, 0, [("tariff2", "active", 0)])
    await _clean(sm)

    # The quota is spent and there is no money: refused, nothing written.
    with pytest.raises(InsufficientFunds):
        await charge("upscale")
    assert await _state(sm, user_id) == (0, 0, [("tariff2", "active", 0)])

    # A top-up and a package: the package pays before the balance.
    await top_up(10_000)
    bought = await _in_tx(
        sm,
        lambda s: plans.buy_plan_from_balance(
            s, settings, user_id=user_id, plan_code="pack3", request_key="1001:pack3"
        ),
    )
    assert (bought.status, bought.price, bought.balance_after) == ("bought", PACK3, 7_500)
    packaged = await charge("generate")
    assert (packaged.funding, packaged.units, packaged.units_after) == ("package", 2, 1)
    # A generation the package can no longer cover whole is paid from the balance (never
    # 1 unit from the package and 1 from the balance); the package keeps its unit.
    paid = await charge("generate")
    assert (paid.funding, paid.price, paid.balance_after, paid.holding_id) == (
        "balance",
        2 * 1_000,
        5_500,
        None,
    )
    small = await charge("upscale")
    assert (small.funding, small.units_after) == ("package", 0)
    money = await charge("upscale")
    assert (money.funding, money.price, money.balance_after) == ("balance", 1_000, 4_500)
    await _clean(sm)

    # Refunds go back where they came from: money to the balance, units to the package.
    back = await refund(money.operation_id)
    assert (back.funding, back.amount, back.balance_after, back.units_back) == (
        "balance",
        1_000,
        5_500,
        0,
    )
    back = await refund(packaged.operation_id)
    assert (back.funding, back.units_back, back.units_after, back.amount) == ("package", 2, 2, 0)
    assert await _state(sm, user_id) == (
        5_500,
        0,
        [("tariff2", "active", 0), ("pack3", "active", 2)],
    )

    # The month is over and 55 ₽ do not pay 299 ₽: the user falls back to the default plan.
    [ended] = await _in_tx(
        sm,
        lambda s: plans.roll_over(s, settings, user_id=user_id, now=utcnow() + timedelta(days=32)),
    )
    assert (ended.kind, ended.reason) == ("ended", "no_money")
    # A quota operation of that period refunded now: nothing carried into nothing.
    back = await refund(last[0].operation_id)
    assert (back.funding, back.units_back, back.not_carried) == ("subscription", 0, "period_over")
    assert await _state(sm, user_id) == (
        5_500,
        0,
        [("tariff2", "ended", 0), ("pack3", "active", 2)],
    )
    await _clean(sm)

    # Every charge entry moved exactly one counter (the audit checks it; here by hand too).
    async with sm() as session:
        rows = await session.execute(
            select(LedgerEntry.amount, LedgerEntry.free_delta, LedgerEntry.units_delta).where(
                LedgerEntry.user_id == user_id, LedgerEntry.kind == "charge"
            )
        )
        moved = [sum(1 for v in row if v) for row in rows]
    assert len(moved) == 20 and set(moved) == {1}
