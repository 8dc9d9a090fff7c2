"""Scenario 2: the Redis server (the stack's own, no persistence) is killed in the middle of
traffic and started again a few seconds later — the queue, the FSM state and every lock are
gone. Enqueues that failed are reversed at once with a message; jobs that were lost with the
queue are voided by the sweeper at their deadline, with a message; nothing stays charged
without a job, and every process carries on by itself."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from sqlalchemy import select

from billing.models import Operation, OperationStatus
from tests.chaos.books import check_books
from tests.chaos.conftest import MakeStack
from tests.chaos.stack import Scene

log = logging.getLogger("chaos")

LONG = {
    "JOB_TIMEOUT_SECONDS": 15,
    "JOB_DEADLINE_MARGIN_SECONDS": 5,
    "OPERATION_DEADLINE_SECONDS": 10,  # queue wait: 30 s in all
    "SWEEP_INTERVAL_SECONDS": 1,
    "JOB_RETRIES": 1,
}


async def charged_but_not_queued(scene: Scene) -> Operation | None:
    """An operation charged whose "queued" message is still on its way (no status message
    recorded yet): its enqueue comes next. The first charged of them if several: its delayed
    message ends first, while Redis is down (a later one's may end after the restart)."""
    async with scene.sessionmaker() as session:
        return await session.scalar(
            select(Operation)
            .where(
                Operation.status == OperationStatus.QUEUED,
                Operation.status_message_id.is_(None),
            )
            .order_by(Operation.id)
            .limit(1)
        )


async def restart_redis_mid_enqueue(scene: Scene, *, downtime: float) -> int:
    """Slow the bot's "queued" messages, kill Redis while one is in flight (so its enqueue
    meets a dead Redis), keep it down for ``downtime`` seconds, start it again."""
    # The message must end well within the downtime, or the enqueue after it may meet the
    # restarted Redis (with a delay as long as the downtime, only the few milliseconds
    # between the charge and its detection separated the two).
    delay = min(2.0, downtime / 2)
    await scene.tg.delay_next(delay, 20, methods=["sendMessage"])
    deadline = time.monotonic() + 60
    while (op := await charged_but_not_queued(scene)) is None:
        assert time.monotonic() < deadline, "no charge in flight to interrupt\n" + scene.logs()
        await asyncio.sleep(0.02)
    # Seen just after its charge, the handler may not have reached its message yet: it first
    # stores the mode's cleared inputs (the FSM, in Redis), and a Redis killed before that
    # fails the handler there ("handler failed", reversed too). A quarter of the message's
    # delay later it waits on the message, and its enqueue comes while Redis is down.
    await asyncio.sleep(delay / 4)
    scene.stack.redis.kill()
    await asyncio.sleep(downtime)
    scene.stack.redis.start()
    await scene.tg.reset_faults()
    return op.id


async def run_redis_restart(
    scene: Scene, photo: bytes, *, users: int, operations: int, downtime: float
) -> None:
    crowd = [scene.user() for _ in range(users)]
    for user in crowd:
        await user.grant(10 * operations)
    traffic = asyncio.gather(*(u.upscales(photo, operations) for u in crowd))

    # Let the traffic get going before pulling the plug.
    async def some_done() -> bool:
        ops = await scene.operations()
        return sum(op.status == OperationStatus.SUCCEEDED for op in ops) >= users // 2

    deadline = time.monotonic() + 240
    while not await some_done():
        assert time.monotonic() < deadline, scene.logs()
        await asyncio.sleep(0.2)
    interrupted = await restart_redis_mid_enqueue(scene, downtime=downtime)
    await traffic
    scene.stack.check_alive()
    await scene.drain()

    ops = {op.id: op for op in await scene.operations()}
    books = await check_books(scene, crowd)
    log.warning(
        "redis restart: %d users, %d operations, interrupted %s (%s): %s",
        users,
        len(ops),
        interrupted,
        ops[interrupted].error,
        books.line(),
    )
    # The charge caught in flight was reversed by the bot at once, with a message.
    assert ops[interrupted].status == OperationStatus.REFUNDED
    assert (ops[interrupted].error or "").startswith("enqueue failed"), ops[interrupted].error
    # Every process survived the restart and works with the new Redis.
    scene.stack.check_alive()
    await asyncio.gather(*(u.upscales(photo, 1) for u in crowd[:2]))
    await scene.drain()
    tail = [s for u in crowd[:2] for s in u.steps[-1:]]
    assert [s.outcome for s in tail] == [OperationStatus.SUCCEEDED] * 2, scene.logs()
    await check_books(scene, crowd)


async def test_redis_restart_refunds_what_could_not_be_queued_short(
    scene: Scene, photo: bytes
) -> None:
    await run_redis_restart(scene, photo, users=4, operations=3, downtime=2.0)


@pytest.mark.chaos
async def test_redis_restart_in_the_middle_of_traffic(make_stack: MakeStack, photo: bytes):
    scene = await make_stack(workers=2, **LONG)
    await run_redis_restart(scene, photo, users=20, operations=5, downtime=5.0)
