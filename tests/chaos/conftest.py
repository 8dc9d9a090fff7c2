"""Fixtures of the chaos scenarios.

- ``chaos_postgres``: a PostgreSQL cluster of this run's own (a scenario crashes it).
- ``shared_stack`` / ``scene``: ONE stack (bot, web, two workers, both emulators, own Redis)
  for all short scenarios of the default suite — starting aiogram takes seconds of CPU per
  process, so they share it. Each test gets it healed (whatever a previous scenario killed
  is started again), emptied (tables truncated, faults cleared) and new users.
- ``make_stack(workers=2, **settings)``: a stack of the test's own, on a fresh database of
  ``chaos_postgres`` (the long ``@pytest.mark.chaos`` versions, whose settings differ).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from tests.chaos.stack import ChaosStack, CrashablePostgres, OwnRedis, Scene, small_photo

MakeStack = Callable[..., Awaitable[Scene]]

log = logging.getLogger("chaos")

# Short job settings shared by the short scenarios: abandoned jobs are voided within
# seconds (claimed ones after JOB_TIMEOUT + MARGIN, ones never claimed after
# OPERATION_DEADLINE + JOB_TIMEOUT + MARGIN).
SHARED_SETTINGS: dict[str, object] = {
    "JOB_TIMEOUT_SECONDS": 15,
    "JOB_DEADLINE_MARGIN_SECONDS": 5,
    "OPERATION_DEADLINE_SECONDS": 10,  # queue wait: 30 s in all
    "SWEEP_INTERVAL_SECONDS": 1,
    "JOB_RETRIES": 1,
    "FREE_OPERATIONS_COUNT": 2,
    "YOOKASSA_TIMEOUT": 2,  # a "slower than the timeout" fault costs seconds, not tens
    # Lets a test queue an operation whose job sleeps (input_ref["test_hook"]); the bot
    # never writes hooks, so the scenarios driven through the bot are unaffected.
    "WORKER_TEST_HOOKS": True,
}


@pytest.fixture(scope="session")
def chaos_postgres() -> Iterator[CrashablePostgres]:
    server = CrashablePostgres().init()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def shared_stack(
    chaos_postgres: CrashablePostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChaosStack]:
    tmp = tmp_path_factory.mktemp("chaos-shared")
    redis_server = OwnRedis(tmp / "redis").start()
    stack = ChaosStack(
        tmp,
        database_url=chaos_postgres.database("chaos_shared"),
        redis_server=redis_server,
        settings=SHARED_SETTINGS,
        workers=2,
    )
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        redis_server.kill()


@pytest.fixture
async def scene(shared_stack: ChaosStack) -> AsyncIterator[Scene]:
    shared_stack.heal()  # in the main thread: the children die with it
    current = Scene(shared_stack)
    try:
        await current.reset()
        yield current
    finally:
        await current.close()


@pytest.fixture
async def make_stack(
    chaos_postgres: CrashablePostgres, tmp_path: Path
) -> AsyncIterator[MakeStack]:
    """``await make_stack(workers=2, **settings)`` → the Scene of a new stack."""
    made: list[tuple[ChaosStack, Scene]] = []

    async def make(*, workers: int = 2, **settings: object) -> Scene:
        n = len(made)
        redis_server = OwnRedis(tmp_path / f"redis-{n}").start()
        # alembic's env runs its own event loop: migrate in a thread.
        name = f"chaos_{tmp_path.name[:40]}_{n}".lower()
        database_url = await asyncio.to_thread(chaos_postgres.database, name)
        stack = ChaosStack(
            tmp_path / f"stack-{n}",
            database_url=database_url,
            redis_server=redis_server,
            settings=settings,
            workers=workers,
        )
        current = Scene(stack)
        made.append((stack, current))
        stack.start()
        return current

    yield make
    for stack, current in made:
        await current.close()
        stack.stop()
        stack.redis.kill()


@pytest.fixture(scope="session")
def photo() -> bytes:
    return small_photo()
