"""Many charges at once on one user: exactly what the user can pay for succeeds."""

from __future__ import annotations

import asyncio

from billing import accounts, operations
from billing.errors import InsufficientFunds
from tests.billing.helpers import new_user
from tests.conftest import make_settings


async def _race(sessionmaker, settings, user_id: int, n: int) -> tuple[int, int]:
    async def one(i: int) -> str:
        async with sessionmaker() as session:
            try:
                await operations.charge(
                    session, settings, user_id=user_id, op_type="upscale", request_key=f"1:{i}"
                )
            except InsufficientFunds:
                await session.rollback()
                return "refused"
            await session.commit()
            return "ok"

    results = await asyncio.gather(*(one(i) for i in range(n)))
    return results.count("ok"), results.count("refused")


async def test_200_charges_on_money_for_50_take_exactly_50(sessionmaker, any_db_url):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, balance=50 * settings.price_kopecks)
    ok, refused = await _race(sessionmaker, settings, user_id, 200)
    assert (ok, refused) == (50, 150)
    async with sessionmaker() as session:
        user = await accounts.get_user(session, user_id=user_id)
        assert user.balance == 0
        assert await accounts.ledger_totals(session, user_id=user_id) == (0, 0)


async def test_200_charges_on_50_free_operations_take_exactly_50(sessionmaker, any_db_url):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, free=50)
    ok, refused = await _race(sessionmaker, settings, user_id, 200)
    assert (ok, refused) == (50, 150)
    async with sessionmaker() as session:
        user = await accounts.get_user(session, user_id=user_id)
        assert (user.free_left, user.balance) == (0, 0)


async def test_free_operations_are_spent_before_money(sessionmaker, any_db_url):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, free=1, balance=2000)
    async with sessionmaker() as session:
        first = await operations.charge(session, settings, user_id=user_id, op_type="retouch")
        second = await operations.charge(session, settings, user_id=user_id, op_type="retouch")
        await session.commit()
    assert (first.funding, first.price, first.free_after) == ("free", 0, 0)
    assert (second.funding, second.price, second.balance_after) == ("balance", 1000, 1000)


async def test_refused_charge_writes_nothing_and_says_why(sessionmaker, any_db_url):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, free=0, balance=500)
    async with sessionmaker() as session:
        try:
            await operations.charge(session, settings, user_id=user_id, op_type="generate")
        except InsufficientFunds as exc:
            assert (exc.price, exc.balance, exc.free_left) == (1000, 500, 0)
        else:
            raise AssertionError("a charge over the balance went through")
        await session.rollback()
        summary = await accounts.get_summary(session, user_id=user_id)
    assert summary.recent == []
    assert summary.user.balance == 500


async def test_two_concurrent_first_messages_create_one_user(sessionmaker, any_db_url):
    async def first_message() -> int:
        async with sessionmaker() as session:
            user, _ = await accounts.get_or_create_user(
                session, telegram_id=777, free_operations=4, language="ru"
            )
            await session.commit()
            return user.id

    ids = await asyncio.gather(*(first_message() for _ in range(20)))
    assert len(set(ids)) == 1
    async with sessionmaker() as session:
        user = await accounts.get_user(session, user_id=ids[0])
        assert (user.free_left, user.free_granted, user.balance) == (4, 4, 0)
        assert await accounts.ledger_totals(session, user_id=ids[0]) == (0, 4)
