"""Scenario 6: YooKassa's notifications duplicated, reordered, late and forged. The final
state follows YooKassa's rules — succeeded and canceled are final, whatever arrives after —
because the web server trusts no notification body: it asks the API each time and credits
(or cancels) at most once.

- duplicates: the same notification delivered four times at once → one credit, one message;
- canceled after succeeded: a cancel notification for a paid payment (YooKassa itself
  refuses to cancel it) → stays credited;
- succeeded after canceled: a late "succeeded" for a canceled payment → never credited;
- succeeded twice hours apart: the old notification re-sent after the user spent the money
  (the "hours" are faked by re-sending it later) → nothing credited again;
- early: "succeeded" arriving while the payment is still pending → nothing yet (503: YooKassa
  delivers it again); the real one later → credited once; a stale "waiting_for_capture"
  after that changes nothing;
- a race: the user presses "Проверить оплату" while the notification is being handled →
  one credit, announced once.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import select

from billing.models import Payment, User
from sandbox.yookassa_client import EmulatorError, YooKassaEmulatorClient
from tests.chaos.books import check_books
from tests.chaos.conftest import MakeStack
from tests.chaos.stack import ChaosUser, Scene

log = logging.getLogger("chaos")


async def balance_of(scene: Scene, user: ChaosUser) -> int:
    async with scene.sessionmaker() as session:
        return int(
            await session.scalar(select(User.balance).where(User.telegram_id == user.tg.user_id))
        )


async def row_of(scene: Scene, payment_id: str) -> Payment:
    async with scene.sessionmaker() as session:
        row = await session.scalar(
            select(Payment).where(Payment.yookassa_payment_id == payment_id)
        )
    assert row is not None, payment_id
    return row


async def settled(yk: YooKassaEmulatorClient, payment_id: str) -> None:
    """Until every notification about the payment got its final answer."""
    for _ in range(600):
        notes = await yk.notifications(payment_id)
        if notes and all(n["done"] for n in notes):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"notifications of {payment_id} never settled: {notes}")


async def new_payment(user: ChaosUser) -> str:
    payment = await user.top_up(100, pay=False)
    assert payment is not None, await user.tg.transcript()
    return payment


async def duplicates(scene: Scene, user: ChaosUser, photo: bytes) -> None:
    pid = await new_payment(user)
    first = await scene.yk.mark_succeeded(pid, notify=True, retry=True, wait=True)
    note = first["notification"]["id"]
    await asyncio.gather(*(scene.yk.resend(note) for _ in range(4)))
    await settled(scene.yk, pid)
    await user.wait_credited(1)
    assert await balance_of(scene, user) == 10_000


async def canceled_after_succeeded(scene: Scene, user: ChaosUser, photo: bytes) -> None:
    pid = await new_payment(user)
    await scene.yk.mark_succeeded(pid, notify=True, retry=True, wait=True)
    await user.wait_credited(1)
    with pytest.raises(EmulatorError) as refused:  # YooKassa: succeeded is final
        await scene.yk.mark_canceled(pid, "expired_on_confirmation")
    assert refused.value.status == 409
    forged = {
        "status": "canceled",
        "paid": False,
        "cancellation_details": {"party": "yoo_money", "reason": "general_decline"},
    }
    await scene.yk.notify(pid, "payment.canceled", object_override=forged, wait=True)
    await settled(scene.yk, pid)
    assert (await row_of(scene, pid)).status == "succeeded"
    assert await balance_of(scene, user) == 10_000


async def succeeded_after_canceled(scene: Scene, user: ChaosUser, photo: bytes) -> None:
    pid = await new_payment(user)
    await scene.yk.pay(pid, cancel=True)  # the checkout's cancel: canceled + notification
    await settled(scene.yk, pid)
    assert (await row_of(scene, pid)).status == "canceled"
    with pytest.raises(EmulatorError) as refused:
        await scene.yk.mark_succeeded(pid)
    assert refused.value.status == 409
    forged = {"status": "succeeded", "paid": True}
    await scene.yk.notify(pid, "payment.succeeded", object_override=forged, wait=True)
    await settled(scene.yk, pid)
    assert (await row_of(scene, pid)).status == "canceled"
    assert await balance_of(scene, user) == 0


async def late_duplicate(scene: Scene, user: ChaosUser, photo: bytes) -> None:
    pid = await new_payment(user)
    first = await scene.yk.mark_succeeded(pid, notify=True, retry=True, wait=True)
    await user.wait_credited(1)
    # Spend it: the free operations first, then one paid from the top-up.
    free = scene.stack.app_settings().FREE_OPERATIONS_COUNT
    await user.upscales(photo, free + 1)
    assert [s.outcome for s in user.steps] == ["succeeded"] * (free + 1), user.steps
    spent = await balance_of(scene, user)
    assert spent == 10_000 - 1_000
    # "Hours later" YooKassa delivers the same notification again.
    await scene.yk.resend(first["notification"]["id"], retry=True)
    await settled(scene.yk, pid)
    assert await balance_of(scene, user) == spent


async def early_then_real(scene: Scene, user: ChaosUser, photo: bytes) -> None:
    pid = await new_payment(user)
    forged = {"status": "succeeded", "paid": True}
    early = await scene.yk.notify(pid, "payment.succeeded", object_override=forged, wait=True)
    # Nothing done while the API says pending; 503, so YooKassa would deliver it again.
    assert not early["delivered"] and early["status"] == 503, early
    assert (await row_of(scene, pid)).status == "pending"
    assert await balance_of(scene, user) == 0
    await scene.yk.mark_succeeded(pid, notify=True, retry=True, wait=True)
    await user.wait_credited(1)
    stale = {"status": "waiting_for_capture", "paid": True}
    await scene.yk.notify(pid, "payment.waiting_for_capture", object_override=stale, wait=True)
    await settled(scene.yk, pid)
    assert (await row_of(scene, pid)).status == "succeeded"
    assert await balance_of(scene, user) == 10_000


async def check_races_notification(scene: Scene, user: ChaosUser, photo: bytes) -> None:
    pid = await new_payment(user)
    invoice = user.invoice
    assert invoice is not None
    await scene.yk.mark_succeeded(pid)
    await asyncio.gather(
        scene.yk.notify(pid, retry=True, wait=True),
        user.tg.press(invoice, text="🔄 Проверить оплату"),
    )
    await settled(scene.yk, pid)
    await user.wait_credited(1)
    assert await balance_of(scene, user) == 10_000


CASES = [
    duplicates,
    canceled_after_succeeded,
    succeeded_after_canceled,
    late_duplicate,
    early_then_real,
    check_races_notification,
]


async def run_cases(scene: Scene, photo: bytes, rounds: int) -> None:
    users: list[ChaosUser] = []

    async def one(case, user: ChaosUser) -> None:  # noqa: ANN001
        try:
            await case(scene, user, photo)
        except AssertionError as exc:
            raise AssertionError(f"{case.__name__}: {exc}\n{await user.tg.transcript()}") from exc

    runs = []
    for _ in range(rounds):
        for case in CASES:
            user = scene.user()
            users.append(user)
            runs.append(one(case, user))
    await asyncio.gather(*runs)
    await scene.drain()
    books = await check_books(scene, users)
    log.warning("notifications: %d cases: %s", len(runs), books.line())
    assert books.payments == {"succeeded": 5 * rounds, "canceled": rounds}, books.line()


async def test_notifications_out_of_order_short(scene: Scene, photo: bytes) -> None:
    await run_cases(scene, photo, rounds=1)


@pytest.mark.chaos
async def test_notifications_out_of_order_many(make_stack: MakeStack, photo: bytes) -> None:
    scene = await make_stack(workers=1)
    await run_cases(scene, photo, rounds=8)
