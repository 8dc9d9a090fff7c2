"""Telegram's flood control (429 with retry_after) and passing 5xx answers are waited out and
retried inside the attempt: the result arrives once, nothing is refunded."""

from __future__ import annotations

from billing.models import LedgerKind


async def test_flood_control_and_a_5xx_are_retried_in_place(harness_factory, images) -> None:
    h = harness_factory(JOB_RETRIES=0, FREE_OPERATIONS_COUNT=0)
    user = h.user()
    file_id = await h.upload(user, images("hopper.jpg"))
    await h.tg.fail_next(1, kind="500", methods=["getFile"])
    await h.tg.fail_next(2, kind="429", retry_after=1, methods=["editMessageMedia"])
    h.start_worker()
    operation_id = await h.new_operation(user, "retouch", [file_id], balance=1000)

    op = await h.wait_final(operation_id)
    assert op.status == "succeeded", f"{op.status}: {op.error}\n{h.logs()}"
    assert op.attempts == 1  # no RQ retry was needed (and none was configured)
    assert "flood control, waiting 1 s" in h.logs()
    assert len([m for m in await user.bot_messages() if m.photo]) == 1
    assert await h.entries(operation_id, LedgerKind.REFUND) == 0


async def test_a_result_whose_answer_was_lost_is_shown_once(harness_factory, images) -> None:
    """Telegram made the "queued" message the result but its answer never came: the retry
    edits the same message again, so the chat holds one result, not two (a sendPhoto
    retried after a lost answer would have sent a second photo)."""
    h = harness_factory(JOB_RETRIES=0, FREE_OPERATIONS_COUNT=0)
    user = h.user()
    file_id = await h.upload(user, images("hopper.jpg"))
    await h.tg.fail_next(1, kind="lost", methods=["editMessageMedia"])
    h.start_worker()
    since = await h.tg.last_call_seq()
    operation_id = await h.new_operation(user, "retouch", [file_id], balance=1000)

    op = await h.wait_final(operation_id)
    assert op.status == "succeeded" and op.attempts == 1, f"{op.status}: {op.error}"
    edits = await h.tg.calls("editMessageMedia", chat_id=user.chat_id, since=since)
    assert [c["ok"] for c in edits] == [True, True]  # done twice: the first answer was lost
    [result] = await user.bot_messages()
    assert result.photo and result.message_id == op.status_message_id
    assert "Ретушь готова" in result.text
    assert await h.entries(operation_id, LedgerKind.REFUND) == 0


async def test_a_long_flood_wait_is_waited_out_by_rqs_retry(harness_factory, images) -> None:
    """retry_after past what an attempt waits in place (MAX_RETRY_AFTER): the job fails, and
    RQ's retry comes when Telegram said, not at the retry intervals (2 s would still meet the
    flood control, and a few such retries would refund a result Telegram would have taken)."""
    h = harness_factory(JOB_RETRIES=1, JOB_DEADLINE_MARGIN_SECONDS=120, FREE_OPERATIONS_COUNT=0)
    user = h.user()
    file_id = await h.upload(user, images("hopper.jpg"))
    await h.tg.fail_next(1, kind="429", retry_after=16, methods=["editMessageMedia"])
    h.start_worker()
    since = await h.tg.last_call_seq()
    operation_id = await h.new_operation(user, "retouch", [file_id], hook="noop", balance=1000)

    op = await h.wait_final(operation_id)
    # The emulator records no call it refused: the first attempt shows by its getFile.
    calls = await h.tg.calls(["getFile", "editMessageMedia"], since=since)
    first_download = min(c["time"] for c in calls if c["method"] == "getFile")
    [sent] = [c["time"] for c in calls if c["method"] == "editMessageMedia"]
    assert sent - first_download >= 16, sent - first_download
    assert op.status == "succeeded", f"{op.status}: {op.error}\n{h.logs()}"
    assert op.attempts == 2
    assert len([m for m in await user.bot_messages() if m.photo]) == 1
    assert await h.entries(operation_id, LedgerKind.REFUND) == 0


async def test_a_flood_wait_past_the_deadline_refunds_at_once(harness_factory, images) -> None:
    h = harness_factory(JOB_RETRIES=2, JOB_DEADLINE_MARGIN_SECONDS=30, FREE_OPERATIONS_COUNT=0)
    user = h.user()
    file_id = await h.upload(user, images("hopper.jpg"))
    await h.tg.fail_next(1, kind="429", retry_after=100, methods=["editMessageMedia"])
    h.start_worker()
    operation_id = await h.new_operation(user, "retouch", [file_id], hook="noop", balance=1000)

    notice = await h.wait_message(user, lambda m: "возвращены" in m.text, "notice")
    assert "10 ₽ возвращены на баланс" in notice.text
    op = await h.wait_final(operation_id)
    assert op.status == "refunded" and op.attempts == 1
    assert await h.entries(operation_id, LedgerKind.REFUND) == 1
    assert "past the operation's deadline" in h.logs()


def test_the_retry_waits_where_rq_looks() -> None:
    from types import SimpleNamespace

    from aiogram.exceptions import TelegramRetryAfter
    from aiogram.methods import SendPhoto

    from tests.conftest import make_settings
    from workers.callbacks import _wait_before_retry, flood_wait
    from workers.failures import JobFailure

    settings = make_settings("sqlite://", JOB_DEADLINE_MARGIN_SECONDS=120)
    try:
        try:
            raise TelegramRetryAfter(SendPhoto(chat_id=1, photo="x"), "flood", 40)
        except TelegramRetryAfter as exc:
            raise JobFailure("undeliverable", "not sent", transient=True) from exc
    except JobFailure as failure:
        assert flood_wait(failure) == 40
    assert flood_wait(ValueError("no")) is None

    job = SimpleNamespace(retry_intervals=[2, 5, 15], retries_left=3)
    assert _wait_before_retry(job, 40, settings)
    assert job.retry_intervals == [41, 5, 15]  # RQ takes index len - retries_left
    job = SimpleNamespace(retry_intervals=[2, 5, 15], retries_left=1)
    assert _wait_before_retry(job, 3, settings)
    assert job.retry_intervals == [2, 5, 15]  # already longer: kept
    job = SimpleNamespace(retry_intervals=None, retries_left=2)
    assert _wait_before_retry(job, 9, settings) and job.retry_intervals == [10]
    assert not _wait_before_retry(job, 60, settings)  # 61 s > half the 120 s margin
