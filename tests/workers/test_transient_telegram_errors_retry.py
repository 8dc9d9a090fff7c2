"""Telegram's flood control (429 with retry_after) and passing 5xx answers are waited out and
retried inside the attempt: the result arrives once, nothing is refunded."""

from __future__ import annotations

from billing.models import LedgerKind


async def test_flood_control_and_a_5xx_are_retried_in_place(harness_factory, images) -> None:
    h = harness_factory(JOB_RETRIES=0, FREE_OPERATIONS_COUNT=0)
    user = h.user()
    file_id = await h.upload(user, images("hopper.jpg"))
    await h.tg.fail_next(1, kind="500", methods=["getFile"])
    await h.tg.fail_next(2, kind="429", retry_after=1, methods=["sendPhoto"])
    h.start_worker()
    operation_id = await h.new_operation(user, "retouch", [file_id], balance=1000)

    op = await h.wait_final(operation_id)
    assert op.status == "succeeded", f"{op.status}: {op.error}\n{h.logs()}"
    assert op.attempts == 1  # no RQ retry was needed (and none was configured)
    assert "flood control, waiting 1 s" in h.logs()
    assert len([m for m in await user.bot_messages() if m.photo]) == 1
    assert await h.entries(operation_id, LedgerKind.REFUND) == 0
