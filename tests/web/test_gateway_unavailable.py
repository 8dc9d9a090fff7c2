"""When the YooKassa API cannot be asked, the answer is 503 and YooKassa's retry credits."""

from __future__ import annotations

import pytest

from billing.models import LedgerKind
from tests.web.conftest import Stack, StackFactory, wait_until


@pytest.mark.parametrize("status", [500, 502, 429])
async def test_api_errors_answer_503_and_the_retry_credits_once(
    stack: Stack, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    user_id, tg_user = await stack.new_user(9301)
    started = await stack.topup(user_id, amount=10_000)
    await stack.yk.mark_succeeded(started.yookassa_payment_id)
    await stack.yk.fail_next(2, only="get", status=status)

    first = await stack.yk.notify(started.yookassa_payment_id)
    assert first["status"] == 503
    assert "retry_later" in first["attempts"][-1]["response"]
    assert await stack.balance(user_id) == 0
    assert any("unavailable" in r.getMessage() for r in caplog.records)

    # YooKassa's own retry schedule: the second attempt fails too, the third credits.
    note = await stack.yk.notify(started.yookassa_payment_id, retry=True, wait=True)
    assert [a["status"] for a in note["attempts"]] == [503, 200]
    assert await stack.balance(user_id) == 10_000
    assert await stack.ledger_count(LedgerKind.TOPUP) == 1
    await tg_user.wait_for_text("Баланс пополнен")
    await stack.settle()
    assert len(await stack.sent_texts(9301)) == 1


async def test_an_api_timeout_answers_503(make_stack: StackFactory) -> None:
    stack = await make_stack(YOOKASSA_TIMEOUT=0.5)
    user_id, _ = await stack.new_user(9302)
    started = await stack.topup(user_id, amount=10_000)
    await stack.yk.mark_succeeded(started.yookassa_payment_id)
    await stack.yk.delay_next(3.0, only="get")

    note = await stack.yk.notify(started.yookassa_payment_id)
    assert note["status"] == 503
    assert await stack.balance(user_id) == 0

    again = await stack.yk.notify(started.yookassa_payment_id)
    assert again["status"] == 200
    assert await stack.balance(user_id) == 10_000


async def test_wrong_credentials_answer_503_until_fixed(
    make_stack: StackFactory, caplog: pytest.LogCaptureFixture
) -> None:
    good = await make_stack()
    user_id, _ = await good.new_user(9303)
    started = await good.topup(user_id, amount=10_000)
    await good.yk.mark_succeeded(started.yookassa_payment_id)
    await good.server.stop()

    broken = await make_stack(YOOKASSA_SECRET_KEY="a-wrong-secret-key")
    note = await broken.yk.notify(started.yookassa_payment_id)
    assert note["status"] == 503
    assert any(r.levelname == "ERROR" and "refused" in r.getMessage() for r in caplog.records)
    await broken.server.stop()

    fixed = await make_stack()
    assert (await fixed.yk.notify(started.yookassa_payment_id))["status"] == 200

    async def credited() -> bool:
        return await fixed.balance(user_id) == 10_000

    await wait_until(credited)
