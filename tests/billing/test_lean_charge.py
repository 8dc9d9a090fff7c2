"""The lean charge: the chain a user who held no plan at their last charge is charged by
first (issue 13/14). It writes the user's row in every charge it makes and returns only the
operation's id, so each case it decides alone is checked here against what the whole chain
would have written: a free operation, the balance, a type of 0 units, a 100 % discount, the
model catalogue's units, a locked type, too little money, a re-delivered update. Both
databases; the audit stays clean (the fixtures check it)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from billing import operations
from billing.errors import DuplicateRequest, InsufficientFunds, OperationLocked
from billing.models import LedgerEntry, Operation, OperationModel, Plan, User
from tests.billing.helpers import new_user
from tests.conftest import make_settings


async def charge(sessionmaker, settings, user_id: int, op_type: str = "upscale", **kw):
    async with sessionmaker() as session:
        result = await operations.charge(session, settings, user_id=user_id, op_type=op_type, **kw)
        await session.commit()
        return result


async def lean_charge(sessionmaker, settings, user_id: int, op_type: str = "upscale", **kw):
    """A charge the lean chain makes (the process knows the user held nothing)."""
    assert user_id in operations._HOLDS_NOTHING, "not a lean charge"
    return await charge(sessionmaker, settings, user_id, op_type, **kw)


async def books(sessionmaker, user_id: int) -> tuple[int, int, int, int]:
    """The user's balance and free operations, how many operations and entries exist."""
    async with sessionmaker() as session:
        user = await session.get(User, user_id)
        ops = await session.scalar(select(func.count()).select_from(Operation))
        entries = await session.scalar(select(func.count()).select_from(LedgerEntry))
        return user.balance, user.free_operations_left, ops, entries


async def write(sessionmaker, statement) -> None:
    async with sessionmaker() as session:
        await session.execute(statement)
        await session.commit()


async def test_free_operations_then_the_balance_then_not_enough(sessionmaker, any_db_url):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, free=2, balance=1000)
    first = await charge(sessionmaker, settings, user_id)  # the whole chain: learns the hint
    assert (first.funding, first.free_after) == ("free", 1)

    free = await lean_charge(sessionmaker, settings, user_id, "edit")
    assert (free.funding, free.price, free.free_after, free.balance_after) == ("free", 0, 0, 1000)
    assert (free.units, free.holding_id, free.op_type) == (1, None, "edit")
    paid = await lean_charge(sessionmaker, settings, user_id)
    assert (paid.funding, paid.price, paid.balance_after) == ("balance", 1000, 0)

    async with sessionmaker() as session:
        op = await session.get(Operation, paid.operation_id)
        entry = await session.scalar(
            select(LedgerEntry).where(LedgerEntry.operation_id == paid.operation_id)
        )
    assert (op.funding, op.price, op.units, op.key_token) == ("balance", 1000, 1, paid.key_token)
    assert (entry.amount, entry.balance_after, entry.free_after) == (-1000, 0, 0)

    before = await books(sessionmaker, user_id)
    with pytest.raises(InsufficientFunds) as refused:
        await lean_charge(sessionmaker, settings, user_id)
    assert (refused.value.price, refused.value.balance, refused.value.free_left) == (1000, 0, 0)
    assert await books(sessionmaker, user_id) == before


async def test_a_type_of_no_units_and_a_full_discount_are_paid_from_nothing(
    sessionmaker, any_db_url
):
    user_id = await new_user(sessionmaker, balance=1500)
    await charge(sessionmaker, make_settings(any_db_url), user_id)  # 1000: learns the hint

    free_type = make_settings(any_db_url, OPERATION_UNITS="upscale=0")
    before = await books(sessionmaker, user_id)
    nothing = await lean_charge(sessionmaker, free_type, user_id)
    assert (nothing.funding, nothing.price, nothing.units) == ("none", 0, 0)
    after = await books(sessionmaker, user_id)
    # an operation, no entry; the user's counters as they were
    assert after == (before[0], before[1], before[2] + 1, before[3])

    await write(sessionmaker, update(Plan).where(Plan.is_default).values(discount_percent=100))
    discounted = await lean_charge(sessionmaker, make_settings(any_db_url), user_id)
    assert (discounted.funding, discounted.price, discounted.units) == ("none", 0, 1)
    assert (await books(sessionmaker, user_id))[:2] == before[:2]


async def test_the_model_catalogue_units_and_the_default_plan_discount(sessionmaker, any_db_url):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, balance=10_000)
    await charge(sessionmaker, settings, user_id)  # 1000: learns the hint
    await write(
        sessionmaker,
        update(OperationModel).where(OperationModel.type == "upscale").values(units=3),
    )
    three = await lean_charge(sessionmaker, settings, user_id)
    assert (three.funding, three.price, three.units, three.balance_after) == (
        "balance",
        3000,
        3,
        6000,
    )
    await write(sessionmaker, update(Plan).where(Plan.is_default).values(discount_percent=25))
    off = await lean_charge(sessionmaker, settings, user_id)  # 3 x 10 ₽ less 25 %, to kopecks
    assert (off.price, off.balance_after) == (2250, 3750)


async def test_a_type_the_default_plan_does_not_unlock_writes_nothing(sessionmaker, any_db_url):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, free=1, balance=5000)
    await charge(sessionmaker, settings, user_id)
    await write(sessionmaker, update(Plan).where(Plan.is_default).values(unlocks=["upscale"]))
    before = await books(sessionmaker, user_id)
    with pytest.raises(OperationLocked):
        await lean_charge(sessionmaker, settings, user_id, "edit")
    assert await books(sessionmaker, user_id) == before
    allowed = await lean_charge(sessionmaker, settings, user_id, "upscale")
    assert (allowed.funding, allowed.price) == ("balance", 1000)


async def test_a_redelivered_update_is_a_duplicate_and_its_debit_is_undone(
    sessionmaker, any_db_url
):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, free=1, balance=3000)
    await charge(sessionmaker, settings, user_id)
    once = await lean_charge(sessionmaker, settings, user_id, request_key="update:7")
    before = await books(sessionmaker, user_id)
    async with sessionmaker() as session:
        with pytest.raises(DuplicateRequest) as dup:
            await operations.charge(
                session, settings, user_id=user_id, op_type="upscale", request_key="update:7"
            )
        await session.rollback()
    assert dup.value.operation_id == once.operation_id
    assert await books(sessionmaker, user_id) == before
