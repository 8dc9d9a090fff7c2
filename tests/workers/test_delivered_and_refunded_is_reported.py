"""An operation whose result reached the chat AND was refunded (the user has both) is never
silent: the job writes ``operations.delivered_at`` when Telegram accepts the result, the
audit reports such an operation, and a worker that finds its delivered result already voided
logs an ERROR."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, update

from billing import accounts, operations
from billing.audit import audit
from billing.db import make_sessionmaker, one_statement_sessions
from billing.errors import OperationDelivered
from billing.models import Operation
from workers import refunds, run, runtime
from workers.failures import Failure


async def _charge(sessionmaker, settings, telegram_id: int) -> int:
    async with sessionmaker() as session:
        user, _ = await accounts.get_or_create_user(
            session, telegram_id=telegram_id, free_operations=0
        )
        await accounts.adjust(session, user_id=user.id, amount=1000, reason="test top-up")
        charged = await operations.charge(
            session,
            settings,
            user_id=user.id,
            op_type="retouch",
            chat_id=telegram_id,
            input_ref={"file_ids": ["x"], "text": None, "language": "ru"},
        )
        await session.commit()
    return charged.operation_id


async def _refund(sessionmaker, operation_id: int) -> None:
    async with sessionmaker() as session:
        assert await operations.refund_operation(
            session, operation_id=operation_id, error="deadline: deadline passed"
        )
        await session.commit()


async def _forget_delivery(sessionmaker, *operation_ids: int) -> None:
    """The engine fixture audits the books when the test ends: undo what was reported."""
    async with sessionmaker() as session:
        await session.execute(
            update(Operation).where(Operation.id.in_(operation_ids)).values(delivered_at=None)
        )
        await session.commit()


async def _problems(sessionmaker) -> list[str]:
    async with sessionmaker() as session:
        return await audit(session)


async def test_the_audit_reports_a_refunded_operation_whose_result_was_delivered(
    engine, harness_settings
) -> None:
    settings = harness_settings()
    sessionmaker = make_sessionmaker(engine)
    refunded = await _charge(sessionmaker, settings, 8101)
    posted = await _charge(sessionmaker, settings, 8102)
    await _refund(sessionmaker, refunded)
    async with sessionmaker() as session:
        assert await operations.complete_operation(
            session, operation_id=posted, result_ref={"photo_message_id": 1}
        )
        # The sweeper voided it; then Telegram accepted its result.
        await session.execute(
            update(Operation).where(Operation.id == refunded).values(delivered_at=func.now())
        )
        await session.commit()
    try:
        problems = await _problems(sessionmaker)
        reported = [p for p in problems if p.startswith(f"operation {refunded} ")]
        assert reported and "delivered" in reported[0] and "refunded" in reported[0], problems
        # A posted operation with its delivery time is what should be: nothing to report.
        assert not [p for p in problems if p.startswith(f"operation {posted} ")], problems
    finally:
        await _forget_delivery(sessionmaker, refunded)


async def test_a_job_that_finds_its_delivered_result_voided_logs_an_error(
    engine, harness_settings, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="workers")
    settings = harness_settings()
    sessionmaker = make_sessionmaker(engine)
    # The photo was accepted after the sweeper voided the operation (the job's own path)...
    sent_late = await _charge(sessionmaker, settings, 8201)
    # ...or a failure path found the "delivered" marker of an operation already voided.
    marker_late = await _charge(sessionmaker, settings, 8202)
    running = await _charge(sessionmaker, settings, 8203)
    await _refund(sessionmaker, sent_late)
    await _refund(sessionmaker, marker_late)
    try:
        await run._record_delivery(one_statement_sessions(sessionmaker), sent_late)
        async with sessionmaker() as session:
            token = await operations.operation_key_token(session, operation_id=marker_late)
        await refunds.post_delivered(sessionmaker, marker_late, token, {"photo_message_id": 7})
        await run._record_delivery(one_statement_sessions(sessionmaker), running)

        errors = {
            r.getMessage().split(":")[0]
            for r in caplog.records
            if r.levelno == logging.ERROR and r.name in ("workers.run", "workers.refunds")
        }
        assert errors == {f"operation {sent_late}", f"operation {marker_late}"}, caplog.text
        for record in caplog.records:
            if record.levelno < logging.ERROR:
                assert "already voided" not in record.getMessage(), caplog.text
        async with sessionmaker() as session:
            for operation_id in (sent_late, marker_late, running):
                op = await session.get(Operation, operation_id)
                assert op.delivered_at is not None, operation_id
        problems = await _problems(sessionmaker)
        for operation_id in (sent_late, marker_late):
            assert [p for p in problems if p.startswith(f"operation {operation_id} ")], problems
        assert not [p for p in problems if p.startswith(f"operation {running} ")], problems
    finally:
        await _forget_delivery(sessionmaker, sent_late, marker_late, running)
        async with sessionmaker() as session:
            await operations.refund_operation(session, operation_id=running, error="cleanup")
            await session.commit()


async def test_a_delivered_operation_is_never_refunded_even_without_its_redis_marker(
    engine, harness_settings, caplog
) -> None:
    """Redis lost the "delivered" marker (a restart without persistence), but the row says
    Telegram accepted the result: the refund is refused in the database, and the failure
    path (here the sweeper's) posts the operation instead of voiding it."""
    caplog.set_level(logging.INFO, logger="workers")
    settings = harness_settings()
    sessionmaker = make_sessionmaker(engine)
    operation_id = await _charge(sessionmaker, settings, 8301)
    async with sessionmaker() as session:
        assert await operations.record_delivery(session, operation_id=operation_id) == "queued"
        user_id = (await session.get(Operation, operation_id)).user_id
        balance_before = (await accounts.get_user(session, user_id=user_id)).balance
        await session.commit()
    async with sessionmaker() as session:
        with pytest.raises(OperationDelivered):
            await operations.refund_operation(session, operation_id=operation_id, error="x")
        await session.rollback()

    async with runtime.resources(settings) as (job_sessionmaker, bot):
        voided = await refunds.void_and_notify(
            job_sessionmaker,
            bot,
            operation_id,
            Failure("deadline", transient=False),
            redis_url=settings.REDIS_URL,
        )
    assert voided is None
    async with sessionmaker() as session:
        op = await session.get(Operation, operation_id)
        assert op.status == "succeeded" and op.delivered_at is not None
        assert (await accounts.get_user(session, user_id=op.user_id)).balance == balance_before
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert await _problems(sessionmaker) == []
