"""One formula for an operation's deadline (``billing.settings.operation_deadline_seconds``):
the charge gives a queued operation its queue wait plus its job's timeout plus the margin;
a job's claim gives it the timeout the JOB carries (set by the bot at enqueue) plus the
margin, whatever the worker's own JOB_TIMEOUT_SECONDS says."""

from __future__ import annotations

from types import SimpleNamespace

from billing import operations
from billing.models import Operation
from billing.settings import operation_deadline_seconds
from tests.billing.helpers import charge_once, new_user
from tests.conftest import make_settings
from workers import runtime

SLACK = 2.0  # seconds between the statement's clock readings


def seconds_between(later, earlier) -> float:
    return (later - earlier).total_seconds()


async def test_a_queued_operation_waits_for_the_queue_and_then_its_job(sessionmaker, any_db_url):
    bot = make_settings(
        any_db_url,
        OPERATION_DEADLINE_SECONDS=300,
        JOB_TIMEOUT_SECONDS=240,
        JOB_DEADLINE_MARGIN_SECONDS=150,
    )
    assert operation_deadline_seconds(bot, queued=True) == 300 + 240 + 150
    user_id = await new_user(sessionmaker, telegram_id=7001, balance=1000)
    charged = await charge_once(sessionmaker, bot, user_id, chat_id=7001)
    async with sessionmaker() as session:
        op = await session.get(Operation, charged.operation_id)
    waited = seconds_between(op.deadline_at, op.created_at)
    assert abs(waited - (300 + 240 + 150)) < SLACK, waited


async def test_a_claim_follows_the_timeout_the_job_carries(sessionmaker, any_db_url):
    # The bot queued with 600 s; this worker's own setting says 5 s.
    worker = make_settings(any_db_url, JOB_TIMEOUT_SECONDS=5, JOB_DEADLINE_MARGIN_SECONDS=150)
    job = SimpleNamespace(timeout=600)
    assert runtime.deadline_seconds(worker, job) == 600 + 150
    assert runtime.deadline_seconds(worker, None) == 5 + 150  # a job that carries none
    user_id = await new_user(sessionmaker, telegram_id=7002, balance=1000)
    charged = await charge_once(sessionmaker, worker, user_id, chat_id=7002)
    async with sessionmaker() as session:
        assert await operations.claim_operation(
            session,
            operation_id=charged.operation_id,
            deadline_seconds=runtime.deadline_seconds(worker, job),
        )
        await session.commit()
    async with sessionmaker() as session:
        op = await session.get(Operation, charged.operation_id)
    running = seconds_between(op.deadline_at, op.started_at)
    assert abs(running - (600 + 150)) < SLACK, running
    # ...and the job's watchdog and RQ's SIGALRM agree on the same 600 s.
    assert runtime.job_timeout(job, worker) == 600
    async with sessionmaker() as session:
        await operations.refund_operation(session, operation_id=charged.operation_id)
        await session.commit()
