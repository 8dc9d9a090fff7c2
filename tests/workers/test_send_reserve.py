"""The job's watchdog keeps the last part of its time for sending the result.

A result ready too late fails before anything is sent: no sendPhoto is cut short in flight,
so the chat never holds a photo whose operation was refunded. A result ready in time may
use the kept time for a slow send.

With JOB_TIMEOUT_SECONDS=6 the watchdog fires at 5.4 s, and before the send at 4.32 s.
"""

from __future__ import annotations

from billing.models import LedgerKind

SENDS = ("sendPhoto", "sendDocument")


async def test_late_result_fails_before_it_is_sent(harness_factory, images) -> None:
    h = harness_factory(JOB_RETRIES=0, JOB_TIMEOUT_SECONDS=6, FREE_OPERATIONS_COUNT=0)
    h.start_worker()
    user = h.user()
    # Ready at about 4.6 s: inside the job's time, past the part that is not the send's.
    operation_id = await h.new_operation(
        user,
        "retouch",
        [await h.upload(user, images("hopper.jpg"))],
        hook="sleep:4.6",
        balance=1000,
    )
    notice = await h.wait_message(user, lambda m: "возвращены" in m.text, "notice")
    assert "слишком много времени" in notice.text
    op = await h.wait_final(operation_id)
    assert op.status == "refunded"
    assert "OperationTimedOut" in op.error
    assert await h.entries(operation_id, LedgerKind.REFUND) == 1
    assert await h.tg.calls(SENDS, chat_id=user.chat_id) == []  # never tried to send
    assert not [m for m in await user.bot_messages() if m.photo or m.document]


async def test_slow_send_uses_the_time_kept_for_it(harness_factory, images) -> None:
    h = harness_factory(JOB_RETRIES=0, JOB_TIMEOUT_SECONDS=6, FREE_OPERATIONS_COUNT=0)
    h.start_worker()
    user = h.user()
    # Telegram takes 4.5 s to answer the photo: past 4.32 s, before 5.4 s.
    await h.tg.delay_next(4.5, methods=["sendPhoto"])
    operation_id = await h.new_operation(
        user,
        "retouch",
        [await h.upload(user, images("hopper.jpg"))],
        hook="noop",
        balance=1000,
    )
    op = await h.wait_final(operation_id)
    assert op.status == "succeeded", (op.error, h.logs())
    assert await h.entries(operation_id, LedgerKind.REFUND) == 0
    assert [m for m in await user.bot_messages() if m.photo]
