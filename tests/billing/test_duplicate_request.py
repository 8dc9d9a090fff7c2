"""The same Telegram update charges once: the operation is keyed by chat and message."""

from __future__ import annotations

import asyncio

from billing import accounts, operations
from billing.errors import DuplicateRequest
from tests.billing.helpers import new_user
from tests.conftest import make_settings


async def test_concurrent_deliveries_of_one_update_charge_once(sessionmaker, any_db_url):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, balance=10_000)

    async def deliver() -> str:
        async with sessionmaker() as session:
            try:
                await operations.charge(
                    session, settings, user_id=user_id, op_type="edit", request_key="42:7"
                )
            except DuplicateRequest:
                await session.rollback()
                return "duplicate"
            await session.commit()
            return "charged"

    results = await asyncio.gather(*(deliver() for _ in range(20)))
    assert results.count("charged") == 1
    async with sessionmaker() as session:
        assert (await accounts.get_user(session, user_id=user_id)).balance == 9000


async def test_a_late_redelivery_names_the_operation_it_already_paid_for(sessionmaker, any_db_url):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, free=1)
    async with sessionmaker() as session:
        first = await operations.charge(
            session, settings, user_id=user_id, op_type="upscale", request_key="5:9"
        )
        await session.commit()
        try:
            await operations.charge(
                session, settings, user_id=user_id, op_type="upscale", request_key="5:9"
            )
        except DuplicateRequest as exc:
            assert exc.operation_id == first.operation_id
        else:
            raise AssertionError("a re-delivered update was charged again")
