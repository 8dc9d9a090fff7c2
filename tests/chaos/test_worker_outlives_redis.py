"""Found by the Redis-restart scenario: RQ's worker loop retries a lost Redis only while it
waits for a job; a Redis error while it watches a work-horse (or cleans its registries)
ends ``Worker.work()`` ("found an unhandled exception, quitting"), and ``python -m workers``
exited with it — no worker, no sweeper, operations charged with nobody to run or void them.
``MediaWorker.work`` now waits for Redis and starts RQ's loop again."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable

from billing import accounts, operations
from billing.models import OperationStatus
from jobqueue.queue import enqueue_operation, job_id_for, media_queue
from tests.chaos.stack import Scene
from workers.operations import hook_pid_key


async def sleeping_operation(scene: Scene, photo: bytes, seconds: float) -> tuple[int, str]:
    """An operation whose job sleeps (a test hook), charged and queued the bot's way."""
    user = scene.tg.user(scene.stack.next_user_id(), first_name="Sleeper")
    message = await user.send_photo(photo)
    assert message.file_id is not None
    settings = scene.stack.app_settings()
    async with scene.sessionmaker() as session:
        account, _ = await accounts.get_or_create_user(
            session, telegram_id=user.user_id, free_operations=2, language="ru"
        )
        charged = await operations.charge(
            session,
            settings,
            user_id=account.id,
            op_type="upscale",
            request_key=f"{user.chat_id}:{message.message_id}",
            chat_id=user.chat_id,
            input_ref={
                "file_ids": [message.file_id],
                "text": None,
                "language": "ru",
                "test_hook": f"sleep:{seconds}",
            },
        )
        await operations.set_operation_job(
            session,
            operation_id=charged.operation_id,
            job_id=job_id_for(charged.operation_id, charged.key_token),
        )
        await session.commit()
    conn = scene.stack.redis.client()
    try:
        enqueue_operation(
            media_queue(conn, settings), settings, charged.operation_id, charged.key_token
        )
    finally:
        conn.close()
    return charged.operation_id, charged.key_token


async def wait_for(
    check: Callable[[], Awaitable[object]], what: str, scene: Scene, patience: float = 120.0
) -> object:
    deadline = time.monotonic() + patience
    while True:
        scene.stack.check_alive()  # a worker that exits fails the test here
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{scene.logs(60)}")
        await asyncio.sleep(0.1)


async def test_the_worker_carries_on_after_redis_restarts_under_a_running_job(
    scene: Scene, photo: bytes
) -> None:
    stack = scene.stack
    operation_id, key_token = await sleeping_operation(scene, photo, 2)

    async def sleeping_horse() -> int | None:
        conn = stack.redis.client()
        try:
            raw = conn.get(hook_pid_key(operation_id, key_token))
        finally:
            conn.close()
        return int(raw.decode().split(":")[0]) if raw else None

    horse = await wait_for(sleeping_horse, "the work-horse to start sleeping", scene)
    assert any(horse in w.horses() for w in stack.workers), "not a horse of ours"
    stack.redis.kill()  # while a worker watches its horse

    async def horse_gone() -> bool:
        return not os.path.exists(f"/proc/{horse}")

    # The horse ends while Redis is away: the worker's bookkeeping after it meets no Redis.
    await wait_for(horse_gone, "the work-horse to end", scene)
    await asyncio.sleep(0.5)
    stack.redis.start()
    await scene.wait_ready()  # every worker registered again in the new (empty) Redis

    # They take new work: a job queued after the restart runs to the end.
    second, _ = await sleeping_operation(scene, photo, 0)

    async def succeeded() -> bool:
        ops = {op.id: op for op in await scene.operations()}
        return ops[second].status == OperationStatus.SUCCEEDED

    await wait_for(succeeded, "a job queued after the restart", scene)
    # The first one ended one way or the other (its job's Redis writes failed meanwhile).
    await scene.drain()
    stack.check_alive()
