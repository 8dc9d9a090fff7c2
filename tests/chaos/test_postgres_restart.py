"""Scenario 3: the PostgreSQL server (a cluster of this run's own: initdb + pg_ctl on a free
port) crashes in the middle of traffic — operations being charged, run and refunded,
payments being created and credited — and comes back a few seconds later. The bot, the
workers and the web server reconnect by themselves; nothing is half written (no charge
without its operation and ledger entry, no credit without its payment, no refund twice);
YooKassa's retried notifications credit what was paid while the database was down."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from billing.models import OperationStatus
from tests.chaos.books import check_books
from tests.chaos.conftest import MakeStack
from tests.chaos.stack import ChaosUser, CrashablePostgres, Scene, retry_pause

log = logging.getLogger("chaos")

LONG = {
    "JOB_TIMEOUT_SECONDS": 15,
    "JOB_DEADLINE_MARGIN_SECONDS": 5,
    "OPERATION_DEADLINE_SECONDS": 20,  # queue wait: 40 s in all
    "SWEEP_INTERVAL_SECONDS": 1,
    "JOB_RETRIES": 1,
    "FREE_OPERATIONS_COUNT": 1,
}


async def user_script(user: ChaosUser, photo: bytes, operations: int) -> None:
    """A free operation, a top-up (again if the bot lost the request), paid operations."""
    await user.upscales(photo, 1)
    for attempt in range(8):
        try:
            if await user.top_up(100) is not None:
                break
        except Exception:  # noqa: BLE001 - a lost update: try again, like a user would
            log.info("user %s: top-up attempt lost", user.tg.user_id)
        await retry_pause(attempt)
    else:
        raise AssertionError(
            f"user {user.tg.user_id} could not top up\n{await user.tg.transcript()}"
        )
    await user.wait_credited(1, timeout=180)
    await user.upscales(photo, operations)


async def run_postgres_restart(
    scene: Scene,
    server: CrashablePostgres,
    photo: bytes,
    *,
    users: int,
    operations: int,
    downtime: float,
) -> None:
    crowd = [scene.user() for _ in range(users)]
    traffic = asyncio.ensure_future(
        asyncio.gather(*(user_script(u, photo, operations) for u in crowd))
    )

    async def busy() -> bool:
        ops = await scene.operations()
        return sum(op.status == OperationStatus.SUCCEEDED for op in ops) >= users // 2

    deadline = time.monotonic() + 240
    while not await busy():
        if traffic.done():
            traffic.result()
        assert time.monotonic() < deadline, scene.logs()
        await asyncio.sleep(0.2)
    crashed_at = time.monotonic()
    await asyncio.to_thread(server.crash)
    await asyncio.sleep(downtime)
    await asyncio.to_thread(server.start)
    await traffic
    scene.stack.check_alive()
    await scene.drain()
    books = await check_books(scene, crowd)
    log.warning(
        "postgres restart: %d users, down %.1f s (%.1f s with recovery): %s",
        users,
        downtime,
        time.monotonic() - crashed_at,
        books.line(),
    )
    assert books.payments["succeeded"] == users
    # The same processes work on: one more operation each for two users.
    await asyncio.gather(*(u.upscales(photo, 1) for u in crowd[:2]))
    await scene.drain()
    assert [u.steps[-1].outcome for u in crowd[:2]] == [OperationStatus.SUCCEEDED] * 2, (
        scene.logs()
    )
    await check_books(scene, crowd)


async def test_postgres_restart_short(
    scene: Scene, chaos_postgres: CrashablePostgres, photo: bytes
) -> None:
    await run_postgres_restart(scene, chaos_postgres, photo, users=4, operations=1, downtime=2.0)


@pytest.mark.chaos
async def test_postgres_restart_in_the_middle_of_traffic(
    make_stack: MakeStack, chaos_postgres: CrashablePostgres, photo: bytes
) -> None:
    scene = await make_stack(workers=2, **LONG)
    await run_postgres_restart(scene, chaos_postgres, photo, users=20, operations=3, downtime=5.0)
