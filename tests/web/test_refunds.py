"""refund.succeeded: money returned to the card is debited from the balance, once per refund.

The balance may go below zero when the money was already spent: that negative balance and
its ledger entry are the record of the debt (billing.payments.record_payment_refund)."""

from __future__ import annotations

import asyncio
import base64
import uuid

import pytest

from billing import accounts
from billing.models import LedgerKind, PaymentStatus
from tests.web.conftest import SECRET_KEY, SHOP_ID, Stack, wait_until


async def refund(stack: Stack, yookassa_payment_id: str, amount: int) -> dict:
    """Refund through the YooKassa API, as the shop's owner would from their account."""
    body = {
        "payment_id": yookassa_payment_id,
        "amount": {"value": f"{amount // 100}.{amount % 100:02d}", "currency": "RUB"},
    }
    credentials = base64.b64encode(f"{SHOP_ID}:{SECRET_KEY}".encode()).decode()
    async with stack.http.post(
        stack.settings.YOOKASSA_API_URL + "/refunds",
        json=body,
        headers={"Idempotence-Key": uuid.uuid4().hex, "Authorization": f"Basic {credentials}"},
    ) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def credited_payment(stack: Stack, telegram_id: int, amount: int, **kw: str):  # type: ignore[no-untyped-def]
    user_id, tg_user = await stack.new_user(telegram_id, **kw)
    started = await stack.topup(user_id, amount=amount)
    await stack.yk.mark_succeeded(started.yookassa_payment_id)
    assert (await stack.yk.notify(started.yookassa_payment_id))["status"] == 200
    await tg_user.wait_for_text("пополнен" if kw.get("language", "ru") == "ru" else "topped")
    await stack.settle()
    return user_id, tg_user, started


async def test_a_refund_is_debited_once_however_often_it_is_delivered(stack: Stack) -> None:
    await stack.yk.configure(auto_notify=False)
    user_id, tg_user, started = await credited_payment(stack, 9201, 30_000)
    await refund(stack, started.yookassa_payment_id, 10_000)

    notes = await asyncio.gather(
        *(
            stack.yk.notify(started.yookassa_payment_id, event="refund.succeeded")
            for _ in range(10)
        )
    )
    assert {n["status"] for n in notes} == {200}
    assert await stack.balance(user_id) == 20_000
    assert await stack.ledger_count(LedgerKind.PAYMENT_REFUND) == 1
    row = await stack.payment_row(started.payment_id)
    assert row.refunded_amount == 10_000 and row.status == PaymentStatus.SUCCEEDED

    message = await tg_user.wait_for_text("возврат")
    assert "100 ₽" in message.text and "200 ₽" in message.text
    await stack.settle()
    assert len([t for t in await stack.sent_texts(9201) if "возврат" in t]) == 1


async def test_the_emulators_own_refund_notification_is_handled(stack: Stack) -> None:
    user_id, tg_user, started = await credited_payment(stack, 9202, 10_000, language="en")
    await refund(stack, started.yookassa_payment_id, 10_000)  # YooKassa notifies by itself

    async def debited() -> bool:
        return await stack.balance(user_id) == 0

    await wait_until(debited)
    row = await stack.payment_row(started.payment_id)
    assert row.status == PaymentStatus.REFUNDED and row.refunded_amount == 10_000
    message = await tg_user.wait_for_text("refund")
    assert "Balance now: 0 ₽" in message.text


async def test_a_refund_of_money_already_spent_leaves_a_recorded_debt(stack: Stack) -> None:
    await stack.yk.configure(auto_notify=False)
    user_id, tg_user, started = await credited_payment(stack, 9203, 10_000)
    async with stack.sessionmaker() as session:  # the user spent 80 ₽ of it
        await accounts.adjust(session, user_id=user_id, amount=-8_000, reason="spent in test")
        await session.commit()

    await refund(stack, started.yookassa_payment_id, 10_000)
    note = await stack.yk.notify(started.yookassa_payment_id, event="refund.succeeded")
    assert note["status"] == 200

    assert await stack.balance(user_id) == -8_000
    async with stack.sessionmaker() as session:
        summary = await accounts.get_summary(session, user_id=user_id, recent=1)
    assert summary.user.balance == -8_000
    message = await tg_user.wait_for_text("отрицательный")
    assert "−80 ₽" in message.text


async def test_a_refund_that_overtakes_the_payment_notification_credits_then_debits(
    stack: Stack,
) -> None:
    await stack.yk.configure(auto_notify=False)
    user_id, tg_user = await stack.new_user(9204)
    started = await stack.topup(user_id, amount=10_000)
    await stack.yk.mark_succeeded(started.yookassa_payment_id)  # its notification is lost
    await refund(stack, started.yookassa_payment_id, 4_000)

    note = await stack.yk.notify(started.yookassa_payment_id, event="refund.succeeded")
    assert note["status"] == 200
    assert await stack.balance(user_id) == 6_000
    assert await stack.ledger_count(LedgerKind.TOPUP) == 1
    assert await stack.ledger_count(LedgerKind.PAYMENT_REFUND) == 1
    # the late payment.succeeded changes nothing
    assert (await stack.yk.notify(started.yookassa_payment_id))["status"] == 200
    assert await stack.balance(user_id) == 6_000


async def test_a_refund_yookassa_does_not_know_is_ignored(stack: Stack) -> None:
    await stack.yk.configure(auto_notify=False)
    user_id, _, started = await credited_payment(stack, 9205, 10_000)
    forged = {
        "type": "notification",
        "event": "refund.succeeded",
        "object": {
            "id": str(uuid.uuid4()),
            "payment_id": started.yookassa_payment_id,
            "status": "succeeded",
            "amount": {"value": "100.00", "currency": "RUB"},
        },
    }
    status, answer = await stack.post_json(forged)
    assert (status, answer) == (200, {"status": "unknown_payment"})
    assert await stack.balance(user_id) == 10_000
    assert await stack.ledger_count(LedgerKind.PAYMENT_REFUND) == 0


async def test_a_refund_of_a_payment_the_api_shows_pending_is_asked_again(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refund overtakes the payment, and the API's payment view lags (still pending):
    nothing is credited or debited, and a 503 has YooKassa deliver the refund again."""
    import dataclasses

    from billing.yookassa import YooKassaGateway

    await stack.yk.configure(auto_notify=False)
    user_id, _ = await stack.new_user(9206)
    started = await stack.topup(user_id, amount=10_000)
    await stack.yk.mark_succeeded(started.yookassa_payment_id)
    await refund(stack, started.yookassa_payment_id, 4_000)
    real = YooKassaGateway.fetch_payment

    async def lagging(self, yookassa_payment_id):  # type: ignore[no-untyped-def]
        return dataclasses.replace(await real(self, yookassa_payment_id), status="pending")

    monkeypatch.setattr(YooKassaGateway, "fetch_payment", lagging)
    note = await stack.yk.notify(started.yookassa_payment_id, event="refund.succeeded")
    assert note["status"] == 503
    assert "api_not_there_yet" in note["attempts"][-1]["response"]
    assert await stack.balance(user_id) == 0
    assert await stack.ledger_count(LedgerKind.PAYMENT_REFUND) == 0

    monkeypatch.setattr(YooKassaGateway, "fetch_payment", real)  # the API caught up
    note = await stack.yk.notify(started.yookassa_payment_id, event="refund.succeeded")
    assert note["status"] == 200
    assert await stack.balance(user_id) == 6_000
