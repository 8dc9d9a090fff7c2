"""The notification body is only a hint: what the YooKassa API says decides, and it must
match our own row (status, amount, currency, metadata) before anything is credited."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from billing import payments
from billing.models import LedgerKind, PaymentStatus
from tests.web.conftest import Stack


async def _foreign_payment(
    stack: Stack,
    *,
    user_id: int,
    row_amount: int,
    amount: int,
    currency: str = "RUB",
    metadata: Callable[[int], dict[str, str]] | None = None,
) -> tuple[int, str]:
    """Our row of ``row_amount`` attached to a YooKassa payment made with other figures."""
    async with stack.sessionmaker() as session:
        row = await payments.create_payment(
            session, user_id=user_id, amount=row_amount, currency="RUB"
        )
        await session.commit()
        row_id = row.id
    created = await stack.gateway.create_payment(
        amount=amount,
        currency=currency,
        description="test",
        metadata=metadata(row_id)
        if metadata is not None
        else {"payment_row_id": str(row_id), "user_id": str(user_id)},
        idempotence_key=uuid.uuid4().hex,
    )
    async with stack.sessionmaker() as session:
        await payments.attach_provider_payment(
            session,
            payment_id=row_id,
            yookassa_payment_id=created.id,
            confirmation_url=created.confirmation_url,
            status=created.status,
        )
        await session.commit()
    return row_id, created.id


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]


async def test_body_says_succeeded_but_the_api_says_pending(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    user_id, tg_user = await stack.new_user(8001)
    started = await stack.topup(user_id, amount=40_000)
    # A forged "succeeded" body for a payment that is still pending at YooKassa.
    payment = (await stack.yk.payment(started.yookassa_payment_id))["payment"]
    forged = {**payment, "status": "succeeded", "paid": True}
    note = await stack.yk.notify_raw(
        {"type": "notification", "event": "payment.succeeded", "object": forged}
    )
    # Not done, and not forgotten: a real notification ahead of the API is delivered again.
    assert note["status"] == 503
    assert "api_not_there_yet" in note["attempts"][-1]["response"]
    assert await stack.balance(user_id) == 0
    assert (await stack.payment_row(started.payment_id)).status == PaymentStatus.PENDING
    assert await stack.ledger_count(LedgerKind.TOPUP) == 0
    assert any("the API says otherwise" in r.getMessage() for r in caplog.records)
    # It really asked the API.
    gets = await stack.yk.requests(operation="get")
    assert [g["path"] for g in gets] == [f"/v3/payments/{started.yookassa_payment_id}"]
    await stack.settle()
    assert await stack.sent_texts(8001) == []
    assert tg_user.user_id == 8001


async def test_amount_mismatch_credits_nothing_and_is_logged(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    user_id, _ = await stack.new_user(8002)
    row_id, yk_id = await _foreign_payment(stack, user_id=user_id, row_amount=10_000, amount=100)
    await stack.yk.mark_succeeded(yk_id)
    note = await stack.yk.notify(yk_id)
    assert note["status"] == 200
    assert await stack.balance(user_id) == 0
    row = await stack.payment_row(row_id)
    assert row.credited_at is None and row.status == PaymentStatus.PENDING
    assert any("amount 100 != 10000" in line for line in _errors(caplog))


async def test_currency_mismatch_credits_nothing_and_is_logged(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    user_id, _ = await stack.new_user(8003)
    row_id, yk_id = await _foreign_payment(
        stack, user_id=user_id, row_amount=10_000, amount=10_000, currency="USD"
    )
    await stack.yk.mark_succeeded(yk_id)
    assert (await stack.yk.notify(yk_id))["status"] == 200
    assert await stack.balance(user_id) == 0
    assert (await stack.payment_row(row_id)).credited_at is None
    assert any("currency USD != RUB" in line for line in _errors(caplog))


@pytest.mark.parametrize("which", ["payment_row_id", "user_id", "missing"])
async def test_metadata_mismatch_credits_nothing_and_is_logged(
    stack: Stack, caplog: pytest.LogCaptureFixture, which: str
) -> None:
    user_id, _ = await stack.new_user(8004)
    other_id, _ = await stack.new_user(8005)
    async with stack.sessionmaker() as session:
        decoy = await payments.create_payment(
            session, user_id=other_id, amount=10_000, currency="RUB"
        )
        await session.commit()
    metadata: Callable[[int], dict[str, str]] = {
        # points at another row (of another user)
        "payment_row_id": lambda row_id: {
            "payment_row_id": str(decoy.id),
            "user_id": str(user_id),
        },
        # our row, but another user
        "user_id": lambda row_id: {"payment_row_id": str(row_id), "user_id": str(other_id)},
        "missing": lambda row_id: {},
    }[which]
    _, yk_id = await _foreign_payment(
        stack, user_id=user_id, row_amount=10_000, amount=10_000, metadata=metadata
    )
    await stack.yk.mark_succeeded(yk_id)
    assert (await stack.yk.notify(yk_id))["status"] == 200
    assert await stack.balance(user_id) == 0
    assert await stack.balance(other_id) == 0
    assert await stack.ledger_count(LedgerKind.TOPUP) == 0
    assert any("metadata" in line for line in _errors(caplog)), _errors(caplog)


async def test_a_payment_we_never_made_is_acknowledged_and_ignored(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    user_id, _ = await stack.new_user(8006)
    # A real YooKassa payment of the shop, but no row of ours points at it.
    created = await stack.gateway.create_payment(
        amount=10_000,
        currency="RUB",
        description="not ours",
        metadata={"note": "made elsewhere"},
        idempotence_key=uuid.uuid4().hex,
    )
    await stack.yk.mark_succeeded(created.id)
    note = await stack.yk.notify(created.id)
    assert note["status"] == 200
    assert "unknown_payment" in note["attempts"][-1]["response"]
    assert await stack.balance(user_id) == 0
    assert any("unknown payment" in r.getMessage() for r in caplog.records)


async def test_an_id_nobody_knows_is_acknowledged_and_ignored(stack: Stack) -> None:
    status, answer = await stack.post_json(
        {
            "type": "notification",
            "event": "payment.succeeded",
            "object": {"id": str(uuid.uuid4()), "status": "succeeded"},
        }
    )
    assert (status, answer) == (200, {"status": "unknown_payment"})
    assert await stack.ledger_count() == 0


async def test_a_payment_we_made_that_the_api_does_not_know_is_retried_not_dropped(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """YooKassa gave us the id when it made the payment: a "not found" for it now means the
    API we ask is not the one that made it (another shop's keys, a wrong URL). Answered 200,
    the notification would be gone for good; 503 keeps it coming until that is fixed."""
    await stack.yk.configure(auto_notify=False)
    user_id, _ = await stack.new_user(8010)
    started = await stack.topup(user_id, amount=25_000)
    await stack.yk.mark_succeeded(started.yookassa_payment_id)
    await stack.yk.fail_next(1, only="get", status=404)
    note = await stack.yk.notify(started.yookassa_payment_id)
    assert note["status"] == 503
    assert await stack.balance(user_id) == 0
    assert any("does not know" in line for line in _errors(caplog)), _errors(caplog)
    # Fixed: the next delivery credits, once.
    assert (await stack.yk.notify(started.yookassa_payment_id))["status"] == 200
    assert await stack.balance(user_id) == 25_000
    assert await stack.ledger_count(LedgerKind.TOPUP) == 1
