"""The same payment.succeeded notification, many times: one credit, one message."""

from __future__ import annotations

import asyncio

from billing.models import LedgerKind, PaymentStatus
from tests.web.conftest import Stack, StackFactory


async def test_twenty_concurrent_deliveries_credit_once_and_message_once(stack: Stack) -> None:
    user_id, tg_user = await stack.new_user(5001)
    started = await stack.topup(user_id, amount=30_000)
    await stack.yk.mark_succeeded(started.yookassa_payment_id)
    [first] = [await stack.yk.notify(started.yookassa_payment_id)]
    assert first["status"] == 200

    # The very same bytes, 19 more times, all at once.
    notes = await asyncio.gather(*(stack.yk.resend(first["id"]) for _ in range(19)))
    assert [n["status"] for n in notes] == [200] * 19

    assert await stack.balance(user_id) == 30_000
    assert await stack.ledger_count(LedgerKind.TOPUP) == 1
    row = await stack.payment_row(started.payment_id)
    assert row.status == PaymentStatus.SUCCEEDED and row.credited_at is not None

    message = await tg_user.wait_for_text("Баланс пополнен")
    assert "300 ₽" in message.text
    await stack.settle()
    texts = await stack.sent_texts(5001)
    assert len([t for t in texts if "Баланс пополнен" in t]) == 1, texts


async def test_twenty_simultaneous_first_deliveries_credit_once(stack: Stack) -> None:
    user_id, tg_user = await stack.new_user(5002, language="en")
    started = await stack.topup(user_id, amount=15_050)
    await stack.yk.mark_succeeded(started.yookassa_payment_id)

    notes = await asyncio.gather(
        *(stack.yk.notify(started.yookassa_payment_id) for _ in range(20))
    )
    assert {n["status"] for n in notes} == {200}
    assert await stack.balance(user_id) == 15_050
    assert await stack.ledger_count(LedgerKind.TOPUP) == 1

    message = await tg_user.wait_for_text("topped up")
    assert "150,50 ₽" in message.text
    await stack.settle()
    assert len(await stack.sent_texts(5002)) == 1


async def test_the_same_notification_an_hour_later_changes_nothing(
    make_stack: StackFactory,
) -> None:
    first_server = await make_stack()
    user_id, tg_user = await first_server.new_user(5003)
    started = await first_server.topup(user_id, amount=50_000)
    await first_server.yk.mark_succeeded(started.yookassa_payment_id)
    note = await first_server.yk.notify(started.yookassa_payment_id)
    assert note["status"] == 200
    await tg_user.wait_for_text("Баланс пополнен")
    await first_server.settle()

    # Later, after a restart (a new process knows nothing of the first delivery), YooKassa
    # delivers it again.
    await first_server.server.stop()
    later = await make_stack()
    again = await later.yk.notify_raw(note["body"], url=later.webhook_url)
    assert again["status"] == 200
    assert "already_credited" in again["attempts"][-1]["response"]
    await later.settle()
    assert await later.balance(user_id) == 50_000
    assert await later.ledger_count(LedgerKind.TOPUP) == 1
    assert len(await later.sent_texts(5003)) == 1
