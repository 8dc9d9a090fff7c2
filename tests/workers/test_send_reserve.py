"""The job's watchdog keeps the last part of its time for sending the result.

A result ready too late fails before anything is sent: no result (the status message's
editMessageMedia) is cut short in flight, so the chat never holds a photo whose operation
was refunded. A result ready in time may
use the kept time for a slow send.

With JOB_TIMEOUT_SECONDS=6 the watchdog fires at 5.4 s, and before the send at 4.32 s.
(A slow send within the kept time succeeding is shown on the watchdog itself: a test that
raced a delayed sendPhoto against the clock would fail on a busy machine.)
"""

from __future__ import annotations

import asyncio

import pytest

from billing.models import LedgerKind

SENDS = ("editMessageMedia", "sendPhoto", "sendDocument")


async def test_late_result_fails_before_it_is_sent(harness_factory, images) -> None:
    # A 3 s job (was 6 s: the wait is the deadline under test, shortened, not removed): the
    # watchdog at 2.7 s, of which the part before the send ends at 2.16 s.
    h = harness_factory(JOB_RETRIES=0, JOB_TIMEOUT_SECONDS=3, FREE_OPERATIONS_COUNT=0)
    h.start_worker()
    user = h.user()
    # Ready at about 2.3 s: inside the job's time, past the part that is not the send's.
    operation_id = await h.new_operation(
        user,
        "retouch",
        [await h.upload(user, images("hopper.jpg"))],
        hook="sleep:2.3",
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


async def test_the_send_gets_the_time_kept_for_it(
    harness_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until the result is ready the watchdog is set a fifth early; ``sending()`` moves it to
    the full time. Checked on the watchdog itself: no clock in the test."""
    from workers import run, runtime

    monkeypatch.setattr(runtime, "_settings", harness_settings(JOB_TIMEOUT_SECONDS=100))
    made: list[asyncio.Timeout] = []
    real_timeout_at = asyncio.timeout_at

    def recording(when: float) -> asyncio.Timeout:
        made.append(real_timeout_at(when))
        return made[-1]

    seen: dict[str, float | None] = {}

    async def fake_run(settings, operation_id, key_token, redis, delivered_ref, file_ids, **kw):  # type: ignore[no-untyped-def]
        seen["processing"] = made[0].when()
        kw["sending"]()
        seen["sending"] = made[0].when()
        seen["until"] = kw["send_until"]
        return {"operation_id": operation_id, "outcome": "succeeded"}

    monkeypatch.setattr(run.asyncio, "timeout_at", recording)
    monkeypatch.setattr(run, "_run", fake_run)
    result = await run.run_operation(987_654, [], "0" * 32)
    assert result["outcome"] == "succeeded"
    # 100 s: the watchdog at 95 s, of which 15 s (at most) are the send's.
    assert seen["sending"] - seen["processing"] == pytest.approx(15.0)
    assert seen["until"] == pytest.approx(seen["sending"] - run.SEND_MARGIN)
