"""A job's claim: one conditional statement that starts the operation and returns what the
job needs, committed by itself (PostgreSQL) or in its own transaction (SQLite)."""

from __future__ import annotations

import asyncio

from sqlalchemy import event

from billing import accounts, operations
from billing.db import make_sessionmaker, one_statement_sessions
from billing.models import Operation
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


async def test_a_claim_with_a_key_token_starts_only_the_operation_of_that_token(
    sessionmaker, any_db_url
):
    # As every job claims: with the key token it was queued with, and a deadline.
    user_id = await new_user(sessionmaker, balance=3000)
    charged = await charge_once(sessionmaker, make_settings(any_db_url), user_id)
    async with sessionmaker() as session:
        queued = await session.get(Operation, charged.operation_id)
    # A job of a database that started again: another token, nothing changes.
    assert await job_claim(sessionmaker, charged, deadline_seconds=60, key_token="0" * 32) is None
    async with sessionmaker() as session:
        op = await session.get(Operation, charged.operation_id)
        assert (op.status, op.attempts, op.started_at) == ("queued", 0, None)
        assert op.deadline_at == queued.deadline_at and op.key_token == charged.key_token

    row = await job_claim(sessionmaker, charged, deadline_seconds=60, key_token=charged.key_token)
    assert row is not None and row.key_token == charged.key_token and row.attempts == 1
    async with sessionmaker() as session:
        op = await session.get(Operation, charged.operation_id)
        assert op.status == "running" and op.key_token == charged.key_token
        assert abs((op.deadline_at - op.started_at).total_seconds() - 60) < 1

    # Without a deadline (a claim that keeps it), the deadline stays where it was.
    again = await job_claim(sessionmaker, charged, key_token=charged.key_token)
    assert again is not None and again.attempts == 2
    async with sessionmaker() as session:
        after = await session.get(Operation, charged.operation_id)
        assert after.deadline_at == op.deadline_at and after.started_at > op.started_at


async def test_a_jobs_claim_is_one_statement_on_postgresql(engine, db_url):
    # On PostgreSQL the claim and its user's row are one statement (one round trip), not a
    # statement per step.
    sessionmaker = make_sessionmaker(engine)
    user_id = await new_user(sessionmaker, telegram_id=5151, balance=3000)
    charged = await charge_once(sessionmaker, make_settings(db_url), user_id)
    statements: list[str] = []

    def count(conn, cursor, statement, *rest) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        row = await job_claim(
            sessionmaker, charged, deadline_seconds=60, key_token=charged.key_token
        )
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert row is not None and row.telegram_id == 5151 and row.balance == 2000
    assert len(statements) == 1, statements


async def job_claim(sessionmaker, charged, **kwargs):
    """The claim as the job makes it: committed by itself."""
    async with one_statement_sessions(sessionmaker)() as session:
        row = await operations.claim_operation(
            session, operation_id=charged.operation_id, **kwargs
        )
        await session.commit()
    return row
