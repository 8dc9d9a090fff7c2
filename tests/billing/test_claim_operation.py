"""A job's claim: one conditional statement that starts the operation and returns what the
job needs, committed by itself (PostgreSQL) or in its own transaction (SQLite)."""

from __future__ import annotations

import asyncio

from billing import accounts, operations
from billing.db import one_statement_sessions
from tests.billing.helpers import charge_once, new_user
from tests.conftest import make_settings


async def test_claim_returns_the_operation_and_the_balance_after_the_charge(
    sessionmaker, any_db_url
):
    settings = make_settings(any_db_url, PRICE_PER_OPERATION="10")
    user_id = await new_user(sessionmaker, telegram_id=4242, balance=3000)
    charged = await charge_once(
        sessionmaker, settings, user_id, chat_id=777, input_ref={"file_ids": ["a", "b"]}
    )
    one_statement = one_statement_sessions(sessionmaker)
    async with one_statement() as session:
        row = await operations.claim_operation(
            session, operation_id=charged.operation_id, deadline_seconds=60
        )
        await session.commit()
    assert row is not None
    assert row.id == charged.operation_id and row.user_id == user_id
    assert row.telegram_id == 4242 and row.chat_id == 777
    assert row.input_ref == {"file_ids": ["a", "b"]}
    assert row.attempts == 1 and row.price == 1000 and row.balance == 2000
    async with sessionmaker() as session:
        loaded = await operations.claimed_operation(session, operation_id=charged.operation_id)
        assert loaded is not None and tuple(loaded) == tuple(row)
        assert await operations.claimed_operation(session, operation_id=999_999) is None

    # Claimed again (a retry): the attempt counts; once posted, nothing claims it.
    async with one_statement() as session:
        again = await operations.claim_operation(session, operation_id=charged.operation_id)
        assert again is not None and again.attempts == 2
        assert await operations.complete_operation(session, operation_id=charged.operation_id)
        assert await operations.claim_operation(session, operation_id=charged.operation_id) is None
        await session.commit()


async def test_twenty_concurrent_claims_and_a_refund_leave_one_outcome(sessionmaker, any_db_url):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, balance=3000)
    charged = await charge_once(sessionmaker, settings, user_id)
    one_statement = one_statement_sessions(sessionmaker)

    async def claim() -> bool:
        async with one_statement() as session:
            row = await operations.claim_operation(session, operation_id=charged.operation_id)
            await session.commit()
            return row is not None

    async def refund() -> bool:
        async with sessionmaker() as session:
            done = await operations.refund_operation(session, operation_id=charged.operation_id)
            await session.commit()
            return done is not None

    *claims, refunded = await asyncio.gather(*(claim() for _ in range(20)), refund())
    assert refunded
    async with sessionmaker() as session:
        op = await operations.claimed_operation(session, operation_id=charged.operation_id)
        assert op is not None and op.attempts == claims.count(True)
        assert (await accounts.get_user(session, user_id=user_id)).balance == 3000
        # After the refund, no claim can start it again.
        assert await operations.claim_operation(session, operation_id=charged.operation_id) is None
