"""Scenario 5: the Telegram Bot API answers 429 (with retry_after), 500 and 502 (nginx's HTML
page), and limits the flood like Telegram does, while users work. Messages and results are
retried, not lost: every operation is delivered — none is refunded after its result reached
the chat, none delivered twice — and the users see every message meant for them."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

from billing.models import OperationStatus
from tests.chaos.books import check_books
from tests.chaos.conftest import MakeStack
from tests.chaos.stack import ChaosUser, Scene

log = logging.getLogger("chaos")

SENDS = [
    "sendMessage",
    "sendPhoto",
    "sendDocument",
    "editMessageText",
    "editMessageMedia",
    "deleteMessage",
    "answerCallbackQuery",
    "getFile",
    "sendChatAction",
]


async def inject(scene: Scene, rng: random.Random) -> str:
    kind = rng.choice(["429"] * 4 + ["500"] * 2 + ["502"] * 2 + ["updates"])
    if kind == "updates":  # the bot's long poll itself fails: aiogram backs off and polls on
        await scene.tg.fail_next(1, kind=rng.choice(["500", "502"]), methods=["getUpdates"])
    else:
        methods = rng.sample(SENDS, 3)
        await scene.tg.fail_next(rng.randint(1, 2), kind=kind, retry_after=1, methods=methods)
    return kind


async def run_telegram_faults(
    scene: Scene,
    photo: bytes,
    *,
    users: int,
    operations: int,
    every: tuple[float, float],
    storm: int,
) -> None:
    crowd = [scene.user() for _ in range(users)]
    # Telegram's own flood control on top: a burst of sends to one chat answers 429.
    await scene.tg.set_flood_limits(
        per_chat=3, per_chat_window=1.0, global_limit=40, global_window=1.0
    )
    stop = asyncio.Event()
    injected: list[str] = []
    rng = random.Random(5)

    async def injector() -> None:
        # A bounded storm: faults are "the next N calls", so an endless one would end up
        # hitting only the last user still working, every time.
        for _ in range(storm):
            if stop.is_set():
                return
            injected.append(await inject(scene, rng))
            await asyncio.sleep(rng.uniform(*every))

    async def script(user: ChaosUser) -> None:
        await user.open_upscale()
        for _ in range(operations):
            step = await user.upscale(photo)
            assert step.operation_id is not None, (
                f"photo {step.request_message_id} never queued ({step.outcome})\n"
                f"{await user.tg.transcript()}\n{scene.logs()}"
            )

    task = asyncio.create_task(injector())
    try:
        await asyncio.gather(*(script(u) for u in crowd))
    finally:
        stop.set()
        await task
        await scene.tg.reset_faults()
        await scene.tg.clear_flood_limits()
    await scene.drain()
    calls = await scene.tg.calls(SENDS)
    refused = [c for c in calls if not c.get("ok", True)]
    books = await check_books(scene, crowd, strict_delivery=True)
    log.warning(
        "telegram faults: %d users, %d faults injected, %d of %d Bot API calls refused: %s",
        users,
        len(injected),
        len(refused),
        len(calls),
        books.line(),
    )
    assert refused, "no Bot API call was refused: the scenario tested nothing"
    assert books.operations == {OperationStatus.SUCCEEDED: users * operations}, books.line()


async def test_telegram_429_and_5xx_short(scene: Scene, photo: bytes) -> None:
    await run_telegram_faults(scene, photo, users=4, operations=2, every=(0.5, 1.5), storm=12)


@pytest.mark.chaos
async def test_telegram_429_and_5xx_under_load(make_stack: MakeStack, photo: bytes) -> None:
    scene = await make_stack(workers=2, FREE_OPERATIONS_COUNT=5)
    await run_telegram_faults(scene, photo, users=30, operations=4, every=(0.5, 2.0), storm=40)
