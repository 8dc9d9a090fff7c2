"""The worker and its horse both die: nobody calls a failure callback and the operation stays
"running". The sweeper of another worker voids it once its deadline has passed, and RQ's
abandoned-job cleanup later changes nothing. A running operation whose deadline was extended
when its job claimed it is never voided, even by a sweeper that runs every half second."""

from __future__ import annotations

import os
import signal
from datetime import timedelta

import pytest
from rq.exceptions import StopRequested
from sqlalchemy import update

from billing import accounts, operations
from billing.db import make_sessionmaker
from billing.models import LedgerKind, Operation, utcnow
from sandbox._common import free_port
from workers import sweeper
from workers.refunds import void_and_notify
from workers.runtime import resources
from workers.sweeper import DEADLINE, sweep_overdue


@pytest.mark.real_worker
async def test_worker_killed_with_its_horse_is_swept_once(harness_factory, images) -> None:
    h = harness_factory(
        JOB_TIMEOUT_SECONDS=4, JOB_DEADLINE_MARGIN_SECONDS=2, FREE_OPERATIONS_COUNT=0
    )
    first = h.start_worker("--no-sweeper")
    user = h.user()
    operation_id = await h.new_operation(
        user,
        "retouch",
        [await h.upload(user, images("hopper.jpg"))],
        hook="sleep:120",
        balance=1000,
    )
    horse = await h.wait_hook_pid(operation_id)
    first.kill()
    os.kill(horse, signal.SIGKILL)
    op = await h.operation(operation_id)
    assert op.status == "running" and op.deadline_at > op.started_at

    h.start_worker()  # its sweeper finds the operation past its deadline
    notice = await h.wait_message(user, lambda m: "возвращены" in m.text, "notice")
    assert notice.text == (
        "❌ Не получилось: задача не выполнилась вовремя.\n"
        "10 ₽ возвращены на баланс. Баланс: 10 ₽."
    )
    op = await h.wait_final(operation_id)
    assert op.status == "refunded" and op.error.startswith("deadline")
    assert await h.entries(operation_id, LedgerKind.REFUND) == 1

    # A late pass (or RQ's abandoned-job cleanup) finds nothing more to give back.
    again = await sweep_overdue(h.settings, now=utcnow() + timedelta(days=1))
    assert again == []
    assert await h.entries(operation_id, LedgerKind.REFUND) == 1
    notices = [m for m in await user.bot_messages() if "возвращены" in m.text]
    assert len(notices) == 1


async def test_sweeper_leaves_a_claimed_operation_alone(harness_factory, images) -> None:
    """The charge's deadline passed while the operation waited in the queue; the job's
    claim extended it, so a sweep while the job runs voids nothing. (The charge's own
    deadline lies past the job's timeout: only a long queue wait makes it pass, set here
    in the row. The worker sweeps only between its jobs: the pass is run beside it.)"""
    h = harness_factory(FREE_OPERATIONS_COUNT=0)
    h.start_worker("--no-sweeper")  # it would void the overdue operation before its claim
    user = h.user()
    operation_id = await h.new_operation(
        user,
        "upscale",
        [await h.upload(user, images("astronaut.jpg"))],
        hook="sleep:1",
        balance=1000,
        enqueue=False,
    )
    async with h.sessionmaker() as session:
        await session.execute(
            update(Operation)
            .where(Operation.id == operation_id)
            .values(deadline_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    h.enqueue(operation_id)
    await h.wait_hook_pid(operation_id)  # claimed, and running
    op = await h.operation(operation_id)
    assert op.status == "running" and op.deadline_at > utcnow()
    assert await sweep_overdue(h.settings) == []

    op = await h.wait_final(operation_id)
    assert op.status == "succeeded", f"{op.status}: {op.error}\n{h.logs()}"
    assert await h.entries(operation_id, LedgerKind.REFUND) == 0


async def test_sweeper_spares_an_operation_claimed_after_it_was_listed(
    engine, harness_settings
) -> None:
    settings = harness_settings()
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as session:
        user, _ = await accounts.get_or_create_user(session, telegram_id=42, free_operations=1)
        charged = await operations.charge(
            session,
            settings,
            user_id=user.id,
            op_type="retouch",
            chat_id=42,
            input_ref={"file_ids": ["x"], "text": None, "language": "ru"},
        )
        await session.execute(
            update(Operation)
            .where(Operation.id == charged.operation_id)
            .values(deadline_at=utcnow() - timedelta(minutes=1))
        )
        await session.commit()
    now = utcnow()
    async with sessionmaker() as session:
        assert await operations.overdue_operations(session, now=now) == [charged.operation_id]
        # ...and before the sweeper voids it, a job claims it, extending the deadline.
        assert await operations.claim_operation(
            session, operation_id=charged.operation_id, deadline_seconds=300
        )
        await session.commit()

    async with resources(settings) as (job_sessionmaker, bot):
        voided = await void_and_notify(
            job_sessionmaker, bot, charged.operation_id, DEADLINE, only_if_overdue_at=now
        )
    assert voided is None
    async with sessionmaker() as session:
        op = await session.get(Operation, charged.operation_id)
        assert op.status == "running"


async def test_a_stop_requested_mid_sweep_is_not_swallowed(
    engine, harness_settings, monkeypatch
) -> None:
    """RQ's SIGTERM handler raises StopRequested wherever the worker is; a sweep that caught
    it per operation would keep the worker from its warm shutdown."""
    settings = harness_settings()
    async with make_sessionmaker(engine)() as session:
        user, _ = await accounts.get_or_create_user(session, telegram_id=43, free_operations=1)
        charged = await operations.charge(
            session,
            settings,
            user_id=user.id,
            op_type="upscale",
            chat_id=43,
            input_ref={"file_ids": ["x"], "text": None, "language": "ru"},
        )
        await session.commit()

    async def stop(*args, **kwargs):
        raise StopRequested()

    monkeypatch.setattr(sweeper, "void_and_notify", stop)
    with pytest.raises(StopRequested):
        await sweep_overdue(settings, now=utcnow() + timedelta(days=1))
    async with make_sessionmaker(engine)() as session:
        assert (await session.get(Operation, charged.operation_id)).status == "queued"


def test_a_stop_requested_while_refunding_a_killed_horse_is_not_swallowed(
    monkeypatch, harness_settings
) -> None:
    from types import SimpleNamespace

    from jobqueue.queue import JOB_FUNCTION
    from workers import callbacks, runtime

    async def stop(*args, **kwargs):
        raise StopRequested()

    monkeypatch.setattr(runtime, "_settings", harness_settings())
    monkeypatch.setattr(callbacks, "refund_and_notify", stop)
    monkeypatch.setattr(callbacks, "release_lock", lambda *a, **k: None)
    job = SimpleNamespace(
        func_name=JOB_FUNCTION, args=(1, [], "1" * 32), retries_left=0, connection=None
    )
    with pytest.raises(StopRequested):
        callbacks.on_work_horse_killed(job, 123, 9)


async def test_the_sweeper_voids_nothing_while_the_delivered_marker_is_unreadable(
    engine, harness_settings
) -> None:
    """Redis not answering is not "not delivered": the pass leaves the operation for a later
    one instead of refunding a result the user may already have."""
    settings = harness_settings()
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as session:
        user, _ = await accounts.get_or_create_user(session, telegram_id=44, free_operations=0)
        await accounts.adjust(session, user_id=user.id, amount=1000, reason="test top-up")
        charged = await operations.charge(
            session,
            settings,
            user_id=user.id,
            op_type="retouch",
            chat_id=44,
            input_ref={"file_ids": ["x"], "text": None, "language": "ru"},
        )
        await session.commit()
    later = utcnow() + timedelta(days=1)

    dead = settings.model_copy(update={"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    assert await sweep_overdue(dead, now=later) == []
    async with sessionmaker() as session:
        op = await session.get(Operation, charged.operation_id)
        assert op.status == "queued"

    [refund] = await sweep_overdue(settings, now=later)  # Redis answers again
    assert refund.operation_id == charged.operation_id
    async with sessionmaker() as session:
        op = await session.get(Operation, charged.operation_id)
        assert op.status == "refunded"
