"""The message after a credit: delivered despite Telegram hiccups, never a reason to refuse
the notification, and free of secrets in the logs."""

from __future__ import annotations

import pytest

from billing import accounts
from billing.models import LedgerKind
from tests.web.conftest import SECRET_KEY, Stack
from web import notify


async def _paid(stack: Stack, telegram_id: int, amount: int = 10_000) -> tuple[int, str]:
    user_id, _ = await stack.new_user(telegram_id)
    started = await stack.topup(user_id, amount=amount)
    await stack.yk.mark_succeeded(started.yookassa_payment_id)
    return user_id, started.yookassa_payment_id


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("ru", ("Баланс пополнен на 150 ₽.", "Текущий баланс: 1\u202f150 ₽.")),
        ("en", ("topped up by 150 ₽", "Balance now: 1\u202f150 ₽.")),
    ],
)
async def test_the_message_says_the_amount_and_the_new_balance(
    stack: Stack, language: str, words: tuple[str, ...]
) -> None:
    telegram_id = 9710 if language == "ru" else 9711
    user_id, _ = await stack.new_user(telegram_id, language=language)
    async with stack.sessionmaker() as session:
        await accounts.adjust(session, user_id=user_id, amount=100_000, reason="test: earlier")
        await session.commit()
    started = await stack.topup(user_id, amount=15_000)
    await stack.yk.mark_succeeded(started.yookassa_payment_id)
    assert (await stack.yk.notify(started.yookassa_payment_id))["status"] == 200
    await stack.settle()
    [text] = await stack.sent_texts(telegram_id)
    for part in words:
        assert part in text, text
    assert await stack.balance(user_id) == 115_000


async def test_telegram_errors_are_retried_and_the_message_arrives_once(
    stack: Stack, caplog: pytest.LogCaptureFixture, retry_waits: list[float]
) -> None:
    user_id, yk_id = await _paid(stack, 9701)
    await stack.tg.fail_next(2, kind="500", methods=["sendMessage"])
    assert (await stack.yk.notify(yk_id))["status"] == 200  # not held up by Telegram
    await stack.settle()
    texts = await stack.sent_texts(9701)
    assert len(texts) == 1 and "Баланс пополнен" in texts[0]
    retry_line = "top-up message to chat 9701 failed (attempt"
    retried = [r for r in caplog.records if retry_line in r.getMessage()]
    assert len(retried) == 2
    assert retry_waits == list(notify.POLICY.backoff[:2])  # the notifier's backoff, no more
    assert await stack.balance(user_id) == 10_000


async def test_telegram_flood_control_is_waited_out(
    stack: Stack, retry_waits: list[float]
) -> None:
    _, yk_id = await _paid(stack, 9702)
    await stack.tg.fail_next(1, kind="429", retry_after=1, methods=["sendMessage"])
    assert (await stack.yk.notify(yk_id))["status"] == 200
    await stack.settle()
    assert len(await stack.sent_texts(9702)) == 1
    # Telegram's retry_after, plus the jitter, was waited before the message went again.
    [waited] = retry_waits
    assert 1.0 <= waited <= 1.0 + notify.POLICY.flood_jitter


async def test_a_user_who_blocked_the_bot_is_still_credited(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    user_id, yk_id = await _paid(stack, 9703)
    await stack.tg.block(9703)
    assert (await stack.yk.notify(yk_id))["status"] == 200
    await stack.settle()
    assert await stack.balance(user_id) == 10_000
    assert await stack.ledger_count(LedgerKind.TOPUP) == 1
    assert any("blocked the bot" in r.getMessage() for r in caplog.records)


async def test_logs_carry_no_secrets_and_no_card_data(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    _, yk_id = await _paid(stack, 9704)
    payment = (await stack.yk.payment(yk_id))["payment"]
    card = payment["payment_method"]["card"]
    await stack.yk.notify(yk_id)
    await stack.post_json(
        {
            "type": "notification",
            "event": "payment.succeeded",
            "object": {**payment, "amount": "not-an-amount"},
        }
    )
    await stack.post_json(
        {"type": "notification", "event": "refund.succeeded", "object": {"id": "x" * 80}}
    )
    await stack.settle()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "webhook refused" in text
    assert SECRET_KEY not in text
    assert card["first6"] not in text and "4477" not in text
