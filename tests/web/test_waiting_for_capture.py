"""payment.waiting_for_capture: we create payments with capture=true, so this only records
the state; nothing is credited until YooKassa says succeeded."""

from __future__ import annotations

from billing.models import LedgerKind, PaymentStatus
from tests.web.conftest import Stack


async def test_waiting_for_capture_is_recorded_and_credits_nothing(stack: Stack) -> None:
    user_id, _ = await stack.new_user(9101)
    started = await stack.topup(user_id, amount=10_000)
    await stack.yk.mark_waiting_for_capture(started.yookassa_payment_id)
    note = await stack.yk.notify(started.yookassa_payment_id)
    assert note["status"] == 200
    assert "waiting_for_capture" in note["attempts"][-1]["response"]
    row = await stack.payment_row(started.payment_id)
    assert row.status == PaymentStatus.WAITING_FOR_CAPTURE
    assert await stack.balance(user_id) == 0

    # ... and the capture that follows credits it.
    await stack.yk.mark_succeeded(started.yookassa_payment_id)
    assert (await stack.yk.notify(started.yookassa_payment_id))["status"] == 200
    assert await stack.balance(user_id) == 10_000
    assert await stack.ledger_count(LedgerKind.TOPUP) == 1
