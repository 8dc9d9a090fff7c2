"""Scenario 4: the YooKassa API answers slowly, with 500s, or drops the connection — on
payment creation (the bot's top-up) and on the re-fetch the webhook makes for every
notification. Each top-up creates exactly one YooKassa payment however often it is retried
(the same Idempotence-Key on every attempt), and each payment is credited exactly once
after YooKassa's retried notifications, with one message to the user."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import select

from billing.models import Payment
from sandbox.yookassa_client import YooKassaEmulatorClient
from tests.chaos.books import check_books
from tests.chaos.conftest import MakeStack
from tests.chaos.stack import ChaosUser, Scene

log = logging.getLogger("chaos")

Fault = Callable[[YooKassaEmulatorClient], Awaitable[None]]


def faults(timeout: float) -> dict[str, Fault]:
    """What can go wrong, by name (``timeout``: the gateway's YOOKASSA_TIMEOUT)."""
    slow = timeout + 1.0
    return {
        "create: two 500s": lambda yk: yk.fail_next(2, only="create", status=500),
        "create: 502 then 503": lambda yk: _two(
            yk.fail_next(1, only="create", status=502), yk.fail_next(1, only="create", status=503)
        ),
        "create: answer lost": lambda yk: yk.drop_next(1, only="create", after_processing=True),
        "create: request lost": lambda yk: yk.drop_next(1, only="create"),
        "create: slower than the timeout": lambda yk: yk.delay_next(slow, 1, only="create"),
        "re-fetch: three 500s": lambda yk: yk.fail_next(3, only="get", status=500),
        "re-fetch: connection dropped": lambda yk: yk.drop_next(2, only="get"),
        "re-fetch: slower than the timeout": lambda yk: yk.delay_next(slow, 1, only="get"),
    }


async def _two(first: Awaitable[None], second: Awaitable[None]) -> None:
    await first
    await second


async def top_up_under(user: ChaosUser, fault: Fault | None) -> str:
    if fault is not None:
        await fault(user.scene.yk)
    payment = await user.top_up(100)
    assert payment is not None, f"no payment link\n{await user.tg.transcript()}"
    return payment


async def check_one_payment_per_key(scene: Scene) -> Counter[int]:
    """Every row: one YooKassa payment, made by requests that all carried the row's key.
    Returns how many create requests each row needed."""
    async with scene.sessionmaker() as session:
        rows = list((await session.scalars(select(Payment))).all())
    created = await scene.yk.requests("/v3/payments", method="POST")
    # The emulator also keeps earlier tests' payments, whose row ids repeat (the tables start
    # again from id 1): a payment names its row by the row's random key too.
    ours = {row.idempotence_key: str(row.id) for row in rows}
    remote = [p for p in await scene.yk.payments() if p["metadata"].get("payment_row_key") in ours]
    by_row = Counter(ours[p["metadata"]["payment_row_key"]] for p in remote)
    attempts: Counter[int] = Counter()
    for row in rows:
        keys = [r for r in created if r["headers"].get("Idempotence-Key") == row.idempotence_key]
        attempts[row.id] = len(keys)
        assert keys, f"payment {row.id}: no create request with its key"
        made = by_row[str(row.id)]
        if row.status == "failed":  # YooKassa unreachable for every attempt: 0 or 1 made
            assert made <= 1, f"failed payment {row.id}: {made} YooKassa payments"
        else:
            assert made == 1, f"payment {row.id}: {made} YooKassa payments"
    assert len({r.idempotence_key for r in rows}) == len(rows)
    return attempts


async def test_yookassa_faults_each_once_short(scene: Scene) -> None:
    """Each fault on its own, one user after another."""
    timeout = float(scene.stack.app_settings().YOOKASSA_TIMEOUT)
    users = []
    for name, fault in faults(timeout).items():
        user = scene.user()
        users.append(user)
        await top_up_under(user, fault)
        await user.wait_credited(1, timeout=180)
        log.info("%s: credited", name)
    attempts = await check_one_payment_per_key(scene)
    books = await check_books(scene, users)
    assert books.payments == {"succeeded": len(users)}
    # The create faults really made the gateway ask again, with the same key.
    assert sorted(attempts.values())[-5:] == [2, 2, 2, 3, 3], attempts
    # The re-fetch faults really made YooKassa deliver the notification again.
    async with scene.sessionmaker() as session:
        ids = set((await session.scalars(select(Payment.yookassa_payment_id))).all())
    notes = [n for n in await scene.yk.notifications() if n["object_id"] in ids]
    retried = [n for n in notes if len(n["attempts"]) > 1]
    assert len(retried) >= 3, [len(n["attempts"]) for n in notes]


@pytest.mark.chaos
async def test_yookassa_faults_under_concurrent_top_ups(make_stack: MakeStack) -> None:
    """30 users topping up at once while faults of every kind keep coming. A payment whose
    every notification met a fault is settled by the workers' safety net (it asks the API
    about payments still open after PAYMENT_RECHECK_AFTER_SECONDS), within the wait."""
    scene = await make_stack(
        workers=1,
        YOOKASSA_TIMEOUT=2,
        PAYMENT_RECHECK_AFTER_SECONDS=20,
        PAYMENT_RECHECK_INTERVAL_SECONDS=5,
    )
    timeout = 2.0
    kinds = list(faults(timeout).values())
    rng = random.Random(4)
    users = [scene.user() for _ in range(30)]
    stop = asyncio.Event()

    # Every kind once before anyone starts: each waits for the next call it matches, and
    # 60 top-ups make more than enough such calls, so each is met whatever the timing.
    for kind in kinds:
        await kind(scene.yk)

    async def injector() -> None:
        # Then a bounded storm: faults are "the next N calls", so an endless one would end
        # up hitting only the last user still trying, every time.
        for _ in range(30):
            if stop.is_set():
                return
            await rng.choice(kinds)(scene.yk)
            await asyncio.sleep(rng.uniform(0.5, 1.5))

    task = asyncio.create_task(injector())

    async def top_up(user: ChaosUser, rubles: int) -> None:
        for _ in range(10):  # "the payment service does not answer": the user tries later
            if await user.top_up(rubles) is not None:
                return
            await asyncio.sleep(2)
        raise AssertionError(f"user {user.tg.user_id}: no payment after 10 tries")

    async def script(user: ChaosUser) -> None:
        await top_up(user, 100)
        await user.wait_credited(1, timeout=300)
        await top_up(user, 300)
        await user.wait_credited(2, timeout=300)

    try:
        await asyncio.gather(*(script(u) for u in users))
    finally:
        stop.set()
        await task
        await scene.yk.reset_faults()
    await check_one_payment_per_key(scene)
    books = await check_books(scene, users)
    hit = [r for r in await scene.yk.requests() if r.get("fault")]  # a stack of its own
    notes = await scene.yk.notifications()
    retried = [n for n in notes if len(n["attempts"]) > 1]
    never = [n for n in notes if n["done"] and not n["delivered"]]
    netted = sum(
        "by the safety net" in line
        for worker in [*scene.stack.workers, *scene.stack.retired]
        for line in worker.log(100_000).splitlines()
    )
    log.warning(
        "yookassa faults: %d users, %d API requests met a fault, %d notifications delivered "
        "more than once, %d never delivered, %d payments settled by the safety net: %s",
        len(users),
        len(hit),
        len(retried),
        len(never),
        netted,
        books.line(),
    )
    # At least the up-front ones: 2 + 2 + 1 + 1 + 1 on creation, 3 + 2 + 1 on the re-fetch.
    assert len(hit) >= 13, f"only {len(hit)} requests met a fault: the scenario tested little"
    assert books.payments["succeeded"] == 2 * len(users)
    assert set(books.payments) <= {"succeeded", "failed"}
