"""A job that passes its timeout is refunded once, and not retried (a slow operation stays
slow): whether the job's own watchdog stops it (the operation runs in a thread) or only RQ's
SIGALRM can (the event loop thread itself is stuck)."""

from __future__ import annotations

import pytest

from billing.models import LedgerKind

# python -m workers itself: see tests/workers/conftest.py
pytestmark = pytest.mark.real_worker


async def test_timeouts_refund_once_without_retrying(harness_factory, images) -> None:
    h = harness_factory(JOB_RETRIES=1, JOB_TIMEOUT_SECONDS=4, FREE_OPERATIONS_COUNT=0)
    h.start_worker()
    slow, stuck = h.user(), h.user()
    slow_id = await h.new_operation(
        slow,
        "retouch",
        [await h.upload(slow, images("hopper.jpg"))],
        hook="sleep:60",
        balance=1000,
    )
    stuck_id = await h.new_operation(
        stuck,
        "retouch",
        [await h.upload(stuck, images("hopper.jpg"))],
        hook="hang:60",
        balance=1500,
    )

    for user, operation_id, balance in ((slow, slow_id, "10"), (stuck, stuck_id, "15")):
        notice = await h.wait_message(user, lambda m: "возвращены" in m.text, "notice")
        assert notice.text == (
            "❌ Не получилось: обработка заняла слишком много времени.\n"
            f"10 ₽ возвращены на баланс. Баланс: {balance} ₽."
        )
        op = await h.wait_final(operation_id)
        assert op.status == "refunded"
        assert op.error.startswith("timeout")
        assert op.attempts == 1
        assert await h.entries(operation_id, LedgerKind.REFUND) == 1
        assert not [m for m in await user.bot_messages() if m.photo or m.document]
    op = await h.operation(stuck_id)
    assert "JobTimeoutException" in op.error  # the stuck one was stopped by RQ's SIGALRM
    assert "OperationTimedOut" in (await h.operation(slow_id)).error  # the job's watchdog
