"""payment.canceled: the row is marked canceled and the user is told why, once."""

from __future__ import annotations

import asyncio

import pytest

from billing.models import LedgerKind, PaymentStatus
from tests.web.conftest import Stack
from texts.i18n import t
from texts.money_texts import CANCELLATION_REASONS, cancellation_text


async def test_a_canceled_payment_tells_the_user_why(stack: Stack) -> None:
    user_id, tg_user = await stack.new_user(9001)
    started = await stack.topup(user_id, amount=25_000)
    await stack.yk.mark_canceled(started.yookassa_payment_id, reason="insufficient_funds")
    note = await stack.yk.notify(started.yookassa_payment_id)
    assert note["status"] == 200

    message = await tg_user.wait_for_text("не прошла")
    assert "250 ₽" in message.text
    assert "недостаточно денег" in message.text
    row = await stack.payment_row(started.payment_id)
    assert row.status == PaymentStatus.CANCELED
    assert row.cancellation_reason == "insufficient_funds"
    assert await stack.balance(user_id) == 0
    assert await stack.ledger_count(LedgerKind.TOPUP) == 0


async def test_an_english_user_is_told_in_english(stack: Stack) -> None:
    user_id, tg_user = await stack.new_user(9002, language="en")
    started = await stack.topup(user_id, amount=10_000)
    await stack.yk.mark_canceled(started.yookassa_payment_id, reason="3d_secure_failed")
    assert (await stack.yk.notify(started.yookassa_payment_id))["status"] == 200
    message = await tg_user.wait_for_text("did not go through")
    assert "3-D Secure" in message.text


async def test_repeated_cancel_notifications_tell_the_user_once(stack: Stack) -> None:
    user_id, tg_user = await stack.new_user(9003)
    started = await stack.topup(user_id, amount=10_000)
    await stack.yk.mark_canceled(started.yookassa_payment_id, reason="card_expired")
    notes = await asyncio.gather(
        *(stack.yk.notify(started.yookassa_payment_id) for _ in range(10))
    )
    assert {n["status"] for n in notes} == {200}
    await tg_user.wait_for_text("срок действия карты")
    await stack.settle()
    assert len(await stack.sent_texts(9003)) == 1


async def test_a_canceled_body_for_a_succeeded_payment_credits_it(stack: Stack) -> None:
    """The event name is a hint too: YooKassa's API says succeeded, so it is a credit."""
    user_id, tg_user = await stack.new_user(9004)
    started = await stack.topup(user_id, amount=10_000)
    await stack.yk.mark_succeeded(started.yookassa_payment_id)
    note = await stack.yk.notify(started.yookassa_payment_id, event="payment.canceled")
    assert note["status"] == 200
    assert await stack.balance(user_id) == 10_000
    await tg_user.wait_for_text("Баланс пополнен")


@pytest.mark.parametrize("language", ["ru", "en"])
def test_every_documented_reason_has_its_own_plain_text(language: str) -> None:
    texts = {reason: cancellation_text(reason, language) for reason in CANCELLATION_REASONS}
    assert len(CANCELLATION_REASONS) == 20
    assert len(set(texts.values())) == len(texts), "two reasons share a text"
    generic = cancellation_text("something_new", language)
    assert generic == t("web-cancel-reason-unknown", language)
    assert generic not in texts.values()
    assert cancellation_text(None, language) == generic


def test_the_emulator_and_the_texts_know_the_same_reasons() -> None:
    from sandbox.yookassa import CANCEL_REASONS

    assert set(CANCEL_REASONS) == set(CANCELLATION_REASONS)
