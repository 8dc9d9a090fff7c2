"""A refund happens once, however many callers ask, and gives back what was taken."""

from __future__ import annotations

import asyncio

import pytest

from billing import accounts, operations
from billing.errors import OperationNotFound, OperationNotRefundable
from tests.billing.helpers import charge_once, new_user
from tests.conftest import make_settings


async def test_50_concurrent_refunds_of_one_operation_refund_once(sessionmaker, any_db_url):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, balance=3000)
    charged = await charge_once(sessionmaker, settings, user_id)

    async def refund() -> bool:
        async with sessionmaker() as session:
            result = await operations.refund_operation(session, operation_id=charged.operation_id)
            await session.commit()
            return result is not None

    results = await asyncio.gather(*(refund() for _ in range(50)))
    assert results.count(True) == 1
    async with sessionmaker() as session:
        assert (await accounts.get_user(session, user_id=user_id)).balance == 3000
        summary = await accounts.get_summary(session, user_id=user_id)
    assert summary.recent[0]["status"] == "refunded"


async def test_a_free_operation_comes_back_as_a_free_operation(sessionmaker, any_db_url):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, free=2, balance=1000)
    charged = await charge_once(sessionmaker, settings, user_id)
    assert charged.funding == "free"
    async with sessionmaker() as session:
        result = await operations.refund_operation(session, operation_id=charged.operation_id)
        await session.commit()
    assert result is not None
    assert (result.free_back, result.amount, result.free_after, result.balance_after) == (
        1,
        0,
        2,
        1000,
    )


async def test_a_succeeded_operation_is_never_refunded(sessionmaker, any_db_url):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, balance=1000)
    charged = await charge_once(sessionmaker, settings, user_id)
    async with sessionmaker() as session:
        assert await operations.complete_operation(session, operation_id=charged.operation_id)
        await session.commit()
        with pytest.raises(OperationNotRefundable):
            await operations.refund_operation(session, operation_id=charged.operation_id)
        await session.rollback()
        assert (await accounts.get_user(session, user_id=user_id)).balance == 0


async def test_a_refunded_operation_cannot_be_completed_later(sessionmaker, any_db_url):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, balance=1000)
    charged = await charge_once(sessionmaker, settings, user_id)
    async with sessionmaker() as session:
        assert await operations.refund_operation(session, operation_id=charged.operation_id)
        assert not await operations.complete_operation(session, operation_id=charged.operation_id)
        assert await operations.claim_operation(session, operation_id=charged.operation_id) is None
        await session.commit()


async def test_refund_of_a_missing_operation_is_a_named_error(sessionmaker):
    async with sessionmaker() as session:
        with pytest.raises(OperationNotFound):
            await operations.refund_operation(session, operation_id=424242)


async def test_a_free_type_charges_nothing_and_fails_without_a_refund(sessionmaker, any_db_url):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, free=0, balance=0)
    charged = await charge_once(sessionmaker, settings, user_id, op_type="add_text")
    assert (charged.funding, charged.price) == ("none", 0)
    async with sessionmaker() as session:
        result = await operations.refund_operation(session, operation_id=charged.operation_id)
        await session.commit()
        assert result is not None and (result.amount, result.free_back) == (0, 0)
        summary = await accounts.get_summary(session, user_id=user_id)
    assert summary.recent[0]["status"] == "failed"
