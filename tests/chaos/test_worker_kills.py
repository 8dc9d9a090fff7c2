"""Scenario 1: many users at once through the Telegram emulator (real ``python -m bot``, two
real ``python -m workers``, real ``python -m web``) while a loop SIGKILLs work-horses every
few seconds, and now and then a whole worker (then starts a new one). Every operation ends
delivered or refunded once, with the user told; the ledger audit is clean."""

from __future__ import annotations

import asyncio
import logging

import pytest

from billing.models import OperationStatus
from tests.chaos.books import check_books, explained_by_kills
from tests.chaos.conftest import MakeStack
from tests.chaos.stack import ChaosUser, Scene

log = logging.getLogger("chaos")

# The long run's abandoned jobs are voided by the sweeper at their deadline: claimed ones
# after JOB_TIMEOUT + MARGIN, ones a dead worker took before claiming them after
# OPERATION_DEADLINE + JOB_TIMEOUT + MARGIN (RQ's own abandoned-job detection takes a
# heartbeat + 60 s).
LONG = {
    "JOB_TIMEOUT_SECONDS": 20,
    "JOB_DEADLINE_MARGIN_SECONDS": 10,
    "OPERATION_DEADLINE_SECONDS": 90,  # queue wait: 120 s in all
    "SWEEP_INTERVAL_SECONDS": 1,
    "JOB_RETRIES": 1,
    "FREE_OPERATIONS_COUNT": 2,
}


async def user_script(
    user: ChaosUser, photo: bytes, *, free: int, paid: int, top_up: bool
) -> None:
    await user.open_upscale()
    for _ in range(free):
        await user.upscale(photo)
    if top_up:
        payment = await user.top_up(100)
        assert payment is not None, await user.tg.transcript()
        await user.wait_credited(1)
        await user.open_upscale()
        for _ in range(paid):
            await user.upscale(photo)


async def run_under_kills(
    scene: Scene,
    photo: bytes,
    *,
    users: int,
    free: int,
    paid: int,
    every: tuple[float, float],
    max_worker_kills: int | None = None,
) -> None:
    crowd = [scene.user() for _ in range(users)]
    stop = asyncio.Event()
    killer = asyncio.create_task(
        scene.kill_loop(stop, every=every, max_worker_kills=max_worker_kills)
    )
    try:
        await asyncio.gather(
            *(user_script(u, photo, free=free, paid=paid, top_up=paid > 0) for u in crowd)
        )
    finally:
        stop.set()
        await killer
    await scene.wait_ready()
    await scene.drain()

    steps = [s for u in crowd for s in u.steps]
    assert all(s.operation_id is not None for s in steps), [
        (s.request_message_id, s.outcome) for s in steps if s.operation_id is None
    ]
    books = await check_books(scene, crowd, explained=explained_by_kills(scene))
    log.warning(
        "worker kills: %d users, %d operations, %d kills (%d horses, %d workers, %d hit an "
        "operation): %s",
        users,
        len(steps),
        len(scene.kills),
        sum(k.what == "horse" for k in scene.kills),
        sum(k.what == "worker" for k in scene.kills),
        sum(bool(k.operation_ids) for k in scene.kills),
        books.line(),
    )
    assert sum(books.operations.values()) == len(steps) == users * (free + paid)
    assert books.operations[OperationStatus.SUCCEEDED] > 0
    if paid:
        assert books.payments == {"succeeded": users}
    assert any(k.operation_ids for k in scene.kills), "no kill ever hit a running operation"


async def test_operations_survive_killed_workers_short(scene: Scene, photo: bytes) -> None:
    await run_under_kills(
        scene, photo, users=6, free=2, paid=1, every=(0.5, 1.5), max_worker_kills=1
    )


@pytest.mark.chaos
async def test_fifty_users_while_workers_are_killed(make_stack: MakeStack, photo: bytes):
    scene = await make_stack(workers=2, **LONG)
    await run_under_kills(
        scene, photo, users=50, free=2, paid=2, every=(1.5, 3.5), max_worker_kills=5
    )
