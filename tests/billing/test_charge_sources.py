"""One charge, ONE source (issue 14): free operations, the subscription's quota, packages,
the balance — in SPENDING_ORDER, never split; the discount; access; the refund to the same
source, never into a new period or an ended package. Both databases."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, update

from billing import accounts, operations, plans
from billing.audit import audit
from billing.db import make_sessionmaker
from billing.errors import InsufficientFunds, OperationLocked
from billing.models import LedgerEntry, Operation, User, UserPlan, utcnow
from tests.billing.helpers import new_user
from tests.conftest import make_settings

PRO, PACK = 19_900, 8_000  # the seeded plans' prices


async def buy(sessionmaker, settings, user_id: int, code: str, key: str) -> int:
    async with sessionmaker() as session:
        bought = await plans.buy_plan_from_balance(
            session, settings, user_id=user_id, plan_code=code, request_key=key
        )
        await session.commit()
        return bought.holding_id


async def charge(sessionmaker, settings, user_id: int, op_type: str = "upscale", **kw):
    async with sessionmaker() as session:
        result = await operations.charge(session, settings, user_id=user_id, op_type=op_type, **kw)
        await session.commit()
        return result


async def refund(sessionmaker, operation_id: int):
    async with sessionmaker() as session:
        result = await operations.refund_operation(session, operation_id=operation_id)
        await session.commit()
        return result


async def units_left(sessionmaker, holding_id: int) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(UserPlan.units_left).where(UserPlan.id == holding_id))


async def user_row(sessionmaker, user_id: int) -> User:
    async with sessionmaker() as session:
        return await session.get(User, user_id)


async def counts(sessionmaker) -> tuple[int, int]:
    async with sessionmaker() as session:
        ops = await session.scalar(select(func.count()).select_from(Operation))
        entries = await session.scalar(select(func.count()).select_from(LedgerEntry))
        return ops, entries


async def test_the_default_order_free_then_quota_then_package_then_balance(
    sessionmaker, any_db_url
):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, free=1, balance=PRO + PACK + 900)
    sub = await buy(sessionmaker, settings, user_id, "pro", "b:1")
    pack = await buy(sessionmaker, settings, user_id, "pack10", "b:2")

    first = await charge(sessionmaker, settings, user_id)
    assert (first.funding, first.price, first.free_after, first.holding_id) == ("free", 0, 0, None)
    quota = [await charge(sessionmaker, settings, user_id) for _ in range(30)]
    assert {(c.funding, c.holding_id, c.price, c.units) for c in quota} == {
        ("subscription", sub, 0, 1)
    }
    assert [c.units_after for c in quota] == list(range(29, -1, -1))
    packaged = [await charge(sessionmaker, settings, user_id) for _ in range(10)]
    assert {(c.funding, c.holding_id) for c in packaged} == {("package", pack)}
    assert packaged[-1].units_after == 0
    paid = await charge(sessionmaker, settings, user_id)
    # pro's 10 % off the balance-paid operation: 10 ₽ -> 9 ₽
    assert (paid.funding, paid.price, paid.balance_after, paid.holding_id) == (
        "balance",
        900,
        0,
        None,
    )
    with pytest.raises(InsufficientFunds) as short:
        await charge(sessionmaker, settings, user_id)
    assert short.value.price == 900
    async with sessionmaker() as session:
        op = await session.get(Operation, quota[0].operation_id)
        assert (op.funding, op.holding_id, op.units, op.period_no, op.price) == (
            "subscription",
            sub,
            1,
            1,
            0,
        )
        entry = await session.scalar(
            select(LedgerEntry).where(LedgerEntry.operation_id == quota[0].operation_id)
        )
        assert (entry.amount, entry.free_delta, entry.units_delta) == (0, 0, -1)
        assert (entry.holding_id, entry.units_after) == (sub, 29)


async def test_seed_003s_order_takes_the_subscription_before_free_operations(
    sessionmaker, any_db_url
):
    settings = make_settings(any_db_url, SPENDING_ORDER="subscription,free,package,balance")
    user_id = await new_user(sessionmaker, free=2, balance=PRO)
    sub = await buy(sessionmaker, settings, user_id, "pro", "b:1")
    taken = [await charge(sessionmaker, settings, user_id) for _ in range(31)]
    assert [c.funding for c in taken] == ["subscription"] * 30 + ["free"]
    assert taken[0].holding_id == sub and taken[-1].free_after == 1


async def test_the_balance_first_when_the_operator_says_so(sessionmaker, any_db_url):
    settings = make_settings(any_db_url, SPENDING_ORDER="balance,package,subscription,free")
    user_id = await new_user(sessionmaker, free=1, balance=PACK + 1000)
    await buy(sessionmaker, settings, user_id, "pack10", "b:1")
    taken = [await charge(sessionmaker, settings, user_id) for _ in range(3)]
    assert [c.funding for c in taken] == ["balance", "package", "package"]


async def test_never_split_a_quota_short_of_the_units_goes_to_the_next_source(
    sessionmaker, any_db_url
):
    # seed 003: a generation costs 2 units
    settings = make_settings(any_db_url, OPERATION_UNITS="generate=2")
    user_id = await new_user(sessionmaker, balance=1_000 + PACK + 2_000)
    async with sessionmaker() as session:
        await plans.add_plan(
            session,
            code="mini",
            kind="subscription",
            name_ru="Мини",
            name_en="Mini",
            price=1_000,
            period="month",
            units=3,
        )
        await session.commit()
    sub = await buy(sessionmaker, settings, user_id, "mini", "b:1")
    two = await charge(sessionmaker, settings, user_id, "generate")
    assert (two.funding, two.units, two.units_after) == ("subscription", 2, 1)
    # 1 unit left, 2 needed: the whole operation from the package, nothing from the quota
    pack = await buy(sessionmaker, settings, user_id, "pack10", "b:2")
    next_one = await charge(sessionmaker, settings, user_id, "generate")
    assert (next_one.funding, next_one.holding_id, next_one.units_after) == ("package", pack, 8)
    assert await units_left(sessionmaker, sub) == 1
    # a 1-unit type still fits the quota
    small = await charge(sessionmaker, settings, user_id, "upscale")
    assert (small.funding, small.units_after) == ("subscription", 0)
    # money: 2 units × 10 ₽, no discount on mini
    for _ in range(4):
        await charge(sessionmaker, settings, user_id, "generate")
    paid = await charge(sessionmaker, settings, user_id, "generate")
    assert (paid.funding, paid.price, paid.units) == ("balance", 2_000, 2)


@pytest.mark.parametrize(
    ("price_rub", "expected"),
    [("10.05", 905), ("10.15", 914), ("10.25", 923)],  # 904.5 -> 905, 913.5 -> 914, 922.5 -> 923
)
async def test_the_discount_rounds_to_the_kopeck_half_up(
    sessionmaker, any_db_url, price_rub, expected
):
    settings = make_settings(any_db_url, PRICE_PER_OPERATION=price_rub)
    user_id = await new_user(sessionmaker, balance=PRO + 30 * 2_000)
    await buy(sessionmaker, settings, user_id, "pro", "b:1")
    for _ in range(30):
        await charge(sessionmaker, settings, user_id)
    before = (await user_row(sessionmaker, user_id)).balance
    paid = await charge(sessionmaker, settings, user_id)
    assert (paid.funding, paid.price) == ("balance", expected)
    assert paid.balance_after == before - expected


async def test_a_locked_type_writes_nothing_and_a_plan_unlocks_it(sessionmaker, any_db_url):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, free=2, balance=PRO + PACK)
    async with sessionmaker() as session:
        await plans.edit_plan(session, "free", unlocks=["upscale", "retouch"])
        await plans.edit_plan(session, "pack10", unlocks=["edit"])
        await session.commit()
    before = await counts(sessionmaker)
    with pytest.raises(OperationLocked) as locked:
        await charge(sessionmaker, settings, user_id, "generate")
    assert locked.value.op_type == "generate"
    assert await counts(sessionmaker) == before
    assert (await user_row(sessionmaker, user_id)).free_operations_left == 2
    assert (await charge(sessionmaker, settings, user_id, "retouch")).funding == "free"
    await buy(sessionmaker, settings, user_id, "pack10", "b:1")  # unlocks edit only
    with pytest.raises(OperationLocked):
        await charge(sessionmaker, settings, user_id, "generate")
    assert (await charge(sessionmaker, settings, user_id, "edit")).funding == "free"
    await buy(sessionmaker, settings, user_id, "pro", "b:2")  # pro unlocks every type
    assert (await charge(sessionmaker, settings, user_id, "generate")).funding == "subscription"


async def test_a_type_the_subscription_unlocks_is_charged_after_its_due_renewal(
    sessionmaker, any_db_url
):
    """The period ended a minute ago and the pass has not run: the charge renews first (the
    plan then unlocks the type) instead of refusing it as locked. When the renewal cannot
    happen (no money) the type is locked, and nothing is written."""
    settings = make_settings(any_db_url)
    rich = await new_user(sessionmaker, telegram_id=1, balance=2 * PRO)
    poor = await new_user(sessionmaker, telegram_id=2, balance=PRO)
    async with sessionmaker() as session:
        await plans.edit_plan(session, "free", unlocks=["upscale"])
        await session.commit()
    subs = [await buy(sessionmaker, settings, u, "pro", f"b:{u}") for u in (rich, poor)]
    for sub in subs:
        await _age(sessionmaker, sub)
    paid = await charge(sessionmaker, settings, rich, "generate")
    assert [e.kind for e in paid.rolled_over] == ["renewed"]
    assert (paid.funding, paid.holding_id, paid.units_after) == ("subscription", subs[0], 29)
    before = await counts(sessionmaker)
    with pytest.raises(OperationLocked):
        await charge(sessionmaker, settings, poor, "generate")
    assert await counts(sessionmaker) == before
    async with sessionmaker() as session:
        holding = await session.get(UserPlan, subs[1])
        assert (holding.status, holding.period_no) == ("active", 1)  # rolled back with it


async def test_refunds_go_back_to_their_source(sessionmaker, any_db_url):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, free=1, balance=PRO + PACK + 900)
    sub = await buy(sessionmaker, settings, user_id, "pro", "b:1")
    pack = await buy(sessionmaker, settings, user_id, "pack10", "b:2")
    free_op = await charge(sessionmaker, settings, user_id)
    quota_op = await charge(sessionmaker, settings, user_id)
    for _ in range(29):
        await charge(sessionmaker, settings, user_id)
    pack_op = await charge(sessionmaker, settings, user_id)
    for _ in range(9):
        await charge(sessionmaker, settings, user_id)
    money_op = await charge(sessionmaker, settings, user_id)
    assert [c.funding for c in (free_op, quota_op, pack_op, money_op)] == [
        "free",
        "subscription",
        "package",
        "balance",
    ]

    back = await refund(sessionmaker, free_op.operation_id)
    assert (back.funding, back.free_back, back.amount, back.units_back) == ("free", 1, 0, 0)
    back = await refund(sessionmaker, money_op.operation_id)
    assert (back.funding, back.amount, back.balance_after) == ("balance", 900, 900)
    back = await refund(sessionmaker, quota_op.operation_id)
    assert (back.funding, back.units_back, back.units_after, back.not_carried) == (
        "subscription",
        1,
        1,
        None,
    )
    back = await refund(sessionmaker, pack_op.operation_id)
    assert (back.funding, back.holding_id, back.units_back, back.units_after) == (
        "package",
        pack,
        1,
        1,
    )
    assert await units_left(sessionmaker, sub) == 1
    assert await units_left(sessionmaker, pack) == 1
    assert await refund(sessionmaker, quota_op.operation_id) is None  # once only
    user = await user_row(sessionmaker, user_id)
    assert (user.free_operations_left, user.balance) == (1, 900)


async def _age(sessionmaker, holding_id: int) -> None:
    """The holding's period (or life) ended a minute ago."""
    async with sessionmaker() as session:
        await session.execute(
            update(UserPlan)
            .where(UserPlan.id == holding_id)
            .values(ends_at=utcnow() - timedelta(minutes=1))
        )
        await session.commit()


async def test_a_quota_refund_after_the_period_rolled_over_is_not_carried(
    sessionmaker, any_db_url
):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, balance=2 * PRO)
    sub = await buy(sessionmaker, settings, user_id, "pro", "b:1")
    op = await charge(sessionmaker, settings, user_id)
    assert (op.funding, op.units_after) == ("subscription", 29)
    await _age(sessionmaker, sub)
    # the next charge renews first (roll-over on read), then takes from the new period
    renewed = await charge(sessionmaker, settings, user_id)
    assert (renewed.funding, renewed.holding_id, renewed.units_after) == ("subscription", sub, 29)
    assert [e.kind for e in renewed.rolled_over] == ["renewed"]
    back = await refund(sessionmaker, op.operation_id)
    assert (back.funding, back.units_back, back.not_carried, back.units_after) == (
        "subscription",
        0,
        "period_over",
        29,
    )
    assert await units_left(sessionmaker, sub) == 29
    async with sessionmaker() as session:
        entry = await session.scalar(
            select(LedgerEntry).where(
                LedgerEntry.operation_id == op.operation_id, LedgerEntry.kind == "refund"
            )
        )
        assert (entry.amount, entry.free_delta, entry.units_delta) == (0, 0, 0)
        assert (entry.reason, entry.holding_id, entry.units_after) == ("period_over", sub, 29)
    # the refund of the new period's operation goes back into it
    back = await refund(sessionmaker, renewed.operation_id)
    assert (back.units_back, back.not_carried, back.units_after) == (1, None, 30)


async def test_a_package_refund_after_the_package_ended_is_not_carried(sessionmaker, any_db_url):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, balance=PACK + 1000)
    pack = await buy(sessionmaker, settings, user_id, "pack10", "b:1")
    op = await charge(sessionmaker, settings, user_id)
    assert (op.funding, op.units_after) == ("package", 9)
    await _age(sessionmaker, pack)
    # past its expiry: the charge ends it (roll-over on read) and pays from the balance
    paid = await charge(sessionmaker, settings, user_id)
    assert (paid.funding, paid.price) == ("balance", 1000)
    back = await refund(sessionmaker, op.operation_id)
    assert (back.funding, back.units_back, back.not_carried, back.units_after) == (
        "package",
        0,
        "plan_ended",
        0,
    )
    async with sessionmaker() as session:
        holding = await session.get(UserPlan, pack)
        assert (holding.status, holding.units_left) == ("ended", 0)


async def test_a_holding_past_its_end_is_never_used_even_without_the_roll_over(
    sessionmaker, any_db_url, monkeypatch
):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, balance=PRO + 1000)
    sub = await buy(sessionmaker, settings, user_id, "pro", "b:1")
    await _age(sessionmaker, sub)
    monkeypatch.setattr(operations, "_ROLL_OVER", [None])  # as if billing.plans had none
    paid = await charge(sessionmaker, settings, user_id)
    assert (paid.funding, paid.price) == ("balance", 1000)  # no quota, no discount
    assert await units_left(sessionmaker, sub) == 30


async def test_a_charge_from_a_plan_is_one_statement_on_postgresql(sessionmaker, any_db_url):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, balance=PRO)
    await buy(sessionmaker, settings, user_id, "pro", "b:1")
    await charge(sessionmaker, settings, user_id)  # warm: compiled once
    result, statements = await _steps(sessionmaker, settings, user_id, "edit")
    assert result.funding == "subscription"
    if any_db_url.startswith("postgresql"):
        assert len(statements) == 1, statements
    else:
        # The quota chain (the subscription paid the last charge): old, held, operation,
        # entry — no step for the user's counters, which a quota charge never moves.
        assert len(statements) == 4, statements


async def _steps(sessionmaker, settings, user_id: int, op_type: str = "upscale"):
    """A charge and the statements it ran (on SQLite: one per step of each chain tried)."""
    statements: list[str] = []
    async with sessionmaker() as session:
        conn = await session.connection()

        def seen(_conn, _cursor, statement, *_args) -> None:
            statements.append(statement)

        event.listen(conn.sync_connection, "before_cursor_execute", seen)
        result = await operations.charge(session, settings, user_id=user_id, op_type=op_type)
        event.remove(conn.sync_connection, "before_cursor_execute", seen)
        await session.commit()
    return result, statements


async def test_the_quota_chain_gives_way_whenever_the_subscription_alone_does_not_decide(
    sessionmaker, any_db_url
):
    """After a charge the subscription paid, the next one tries the quota chain (the user and
    that subscription only). Each case below needs more than it reads, so it writes nothing
    and the whole chain decides, as it would have without the hint."""
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, balance=2 * PRO + PACK)  # pro, pack10, renewal
    sub = await buy(sessionmaker, settings, user_id, "pro", "b:1")
    assert (await charge(sessionmaker, settings, user_id)).funding == "subscription"
    # 1. The quota alone: taken by the quota chain (4 steps on SQLite, 1 statement on PG).
    took, statements = await _steps(sessionmaker, settings, user_id)
    assert (took.funding, took.holding_id, took.units_after) == ("subscription", sub, 28)
    assert len(statements) == (1 if any_db_url.startswith("postgresql") else 4)
    # 2. A free operation granted meanwhile comes first in the default order.
    async with sessionmaker() as session:
        await accounts.adjust(session, user_id=user_id, free_delta=1, reason="a gift")
        await session.commit()
    free, _ = await _steps(sessionmaker, settings, user_id)
    assert (free.funding, free.free_after, await units_left(sessionmaker, sub)) == ("free", 0, 28)
    # 3. A type only a package unlocks: allowed through the package's plan.
    async with sessionmaker() as session:
        await plans.edit_plan(session, "free", unlocks=["upscale"])
        await plans.edit_plan(session, "pro", unlocks=["upscale"])
        await plans.edit_plan(session, "pack10", unlocks=["edit"])
        await session.commit()
    assert (await charge(sessionmaker, settings, user_id)).funding == "subscription"
    with pytest.raises(OperationLocked):
        await charge(sessionmaker, settings, user_id, "edit")
    pack = await buy(sessionmaker, settings, user_id, "pack10", "b:2")
    assert (await charge(sessionmaker, settings, user_id)).funding == "subscription"
    edit = await charge(sessionmaker, settings, user_id, "edit")
    assert (edit.funding, edit.holding_id) == ("subscription", sub)  # allowed, quota first
    # 4. The period ended: rolled over first (renewed from the balance), then the quota.
    assert (await charge(sessionmaker, settings, user_id)).funding == "subscription"
    await _age(sessionmaker, sub)
    renewed = await charge(sessionmaker, settings, user_id)
    assert [e.kind for e in renewed.rolled_over] == ["renewed"]
    assert (renewed.funding, renewed.holding_id, renewed.units_after) == ("subscription", sub, 29)
    # 5. The quota spent: the package next (never split), by the whole chain.
    paid = [await charge(sessionmaker, settings, user_id) for _ in range(30)]
    assert [p.funding for p in paid] == ["subscription"] * 29 + ["package"]
    assert paid[-1].holding_id == pack


async def test_seed_003s_order_takes_the_quota_before_free_operations_in_the_quota_chain(
    sessionmaker, any_db_url
):
    settings = make_settings(any_db_url, SPENDING_ORDER="subscription,free,package,balance")
    user_id = await new_user(sessionmaker, free=2, balance=PRO)
    sub = await buy(sessionmaker, settings, user_id, "pro", "b:1")
    assert (await charge(sessionmaker, settings, user_id)).funding == "subscription"
    took, statements = await _steps(sessionmaker, settings, user_id)
    assert (took.funding, took.holding_id, took.free_after) == ("subscription", sub, 2)
    assert len(statements) == (1 if any_db_url.startswith("postgresql") else 4)


async def test_the_audit_catches_a_holding_counter_moved_without_an_entry(
    sessionmaker, any_db_url
):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, balance=PRO)
    sub = await buy(sessionmaker, settings, user_id, "pro", "b:1")
    await charge(sessionmaker, settings, user_id)
    async with sessionmaker() as session:
        assert await audit(session) == []
        await session.execute(
            update(UserPlan).where(UserPlan.id == sub).values(units_left=UserPlan.units_left + 5)
        )
        await session.flush()
        problems = await audit(session)
        await session.rollback()
    assert any(f"holding {sub}: units left 34 != ledger sum 29" in p for p in problems), problems


async def test_200_concurrent_charges_across_every_source_take_exactly_what_is_there(
    engine, db_url
):
    # PostgreSQL: where a charge is one statement and charges of one user really overlap
    sessionmaker = make_sessionmaker(engine)
    settings = make_settings(db_url)
    # 20 free + 30 quota + 10 package + 50 × 9 ₽ (pro's discount) = 110 operations
    user_id = await new_user(sessionmaker, free=20, balance=PRO + PACK + 50 * 900)
    sub = await buy(sessionmaker, settings, user_id, "pro", "b:1")
    pack = await buy(sessionmaker, settings, user_id, "pack10", "b:2")

    async def one(i: int) -> str:
        async with sessionmaker() as session:
            try:
                result = await operations.charge(
                    session, settings, user_id=user_id, op_type="upscale", request_key=f"7:{i}"
                )
            except InsufficientFunds:
                await session.rollback()
                return "refused"
            await session.commit()
            return result.funding.value

    results = await asyncio.gather(*(one(i) for i in range(200)))
    assert {name: results.count(name) for name in set(results)} == {
        "free": 20,
        "subscription": 30,
        "package": 10,
        "balance": 50,
        "refused": 90,
    }
    user = await user_row(sessionmaker, user_id)
    assert (user.free_operations_left, user.balance) == (0, 0)
    assert await units_left(sessionmaker, sub) == 0
    assert await units_left(sessionmaker, pack) == 0
    async with sessionmaker() as session:
        assert await audit(session) == []


async def test_free_operations_due_for_their_renewal_are_topped_up_before_the_charge(
    sessionmaker, any_db_url
):
    settings = make_settings(any_db_url, FREE_OPERATIONS_RENEW_DAYS=30, FREE_OPERATIONS_COUNT=4)
    user_id = await new_user(sessionmaker, free=0, balance=1000)
    async with sessionmaker() as session:  # signed up 31 days ago
        await session.execute(
            update(User).where(User.id == user_id).values(created_at=utcnow() - timedelta(days=31))
        )
        await session.commit()
    first = await charge(sessionmaker, settings, user_id)
    assert (first.funding, first.free_after, first.balance_after) == ("free", 3, 1000)
    assert [e.kind for e in first.rolled_over] == ["free_renewed"]
    second = await charge(sessionmaker, settings, user_id)
    assert (second.funding, second.rolled_over) == ("free", ())


async def test_a_full_discount_makes_a_balance_paid_operation_free_of_charge(
    sessionmaker, any_db_url
):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, balance=1000 + 500)
    async with sessionmaker() as session:
        await plans.add_plan(
            session,
            code="vip",
            kind="package",
            name_ru="ВИП",
            name_en="VIP",
            price=1000,
            units=0,
            discount_percent=100,
        )
        await session.commit()
    await buy(sessionmaker, settings, user_id, "vip", "b:1")
    before = await counts(sessionmaker)
    op = await charge(sessionmaker, settings, user_id)
    # nothing to take: recorded as an operation that cost nothing, with no ledger entry
    assert (op.funding, op.price, op.balance_after, op.units) == ("none", 0, 500, 1)
    assert await counts(sessionmaker) == (before[0] + 1, before[1])
    back = await refund(sessionmaker, op.operation_id)
    assert (back.funding, back.amount, back.balance_after) == ("none", 0, 500)


async def test_a_user_who_held_nothing_then_buys_a_plan_is_charged_from_it(
    sessionmaker, any_db_url
):
    # The process remembers that the user held no plan at the last charge and tries the
    # lean chain first; a plan bought since (here in another session) must still be used.
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, balance=PRO + 2000)
    first = await charge(sessionmaker, settings, user_id)
    assert (first.funding, first.price) == ("balance", 1000)
    again = await charge(sessionmaker, settings, user_id)
    assert (again.funding, again.price) == ("balance", 1000)
    sub = await buy(sessionmaker, settings, user_id, "pro", "b:1")
    after = await charge(sessionmaker, settings, user_id)
    assert (after.funding, after.holding_id, after.units_after) == ("subscription", sub, 29)


async def test_a_charge_of_a_user_who_holds_nothing_is_one_statement_on_postgresql(
    sessionmaker, any_db_url
):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, free=1, balance=2000)
    await charge(sessionmaker, settings, user_id)  # learns that the user holds nothing
    result, statements = await _steps(sessionmaker, settings, user_id, "edit")
    assert (result.funding, result.price) == ("balance", 1000)
    if any_db_url.startswith("postgresql"):
        assert len(statements) == 1, statements
    else:
        assert len(statements) == 4  # old, debit, operation, entry
