"""A job that runs twice — enqueued twice, run again after it succeeded or was refunded, or
run by two workers at once — charges nothing and refunds nothing a second time."""

from __future__ import annotations

from billing.models import LedgerKind


async def test_same_operation_enqueued_twice_delivers_once(harness_factory, images) -> None:
    h = harness_factory(FREE_OPERATIONS_COUNT=0)
    h.start_worker()
    h.start_worker()  # two workers may pick up the two copies at the same time
    user = h.user()
    operation_id = await h.new_operation(
        user,
        "upscale",
        [await h.upload(user, images("astronaut.jpg"))],
        hook="sleep:1",  # long enough for the other worker to take the second copy meanwhile
        balance=1000,
        enqueue=False,
    )
    h.enqueue(operation_id)
    h.enqueue(operation_id)

    op = await h.wait_final(operation_id)
    assert op.status == "succeeded", f"{op.status}: {op.error}\n{h.logs()}"
    await h.wait_until(lambda: _outcomes(h), "both copies of the job to end", patience=60)
    photos = [m for m in await user.bot_messages() if m.photo]
    assert len(photos) == 1
    assert await h.entries(operation_id, LedgerKind.CHARGE) == 1
    assert await h.entries(operation_id, LedgerKind.REFUND) == 0

    # Once more, long after: nothing is sent, charged or refunded.
    h.enqueue(operation_id)
    await h.wait_until(lambda: _outcomes(h, 3), "the third run", patience=60)
    assert len([m for m in await user.bot_messages() if m.photo]) == 1
    assert (await h.operation(operation_id)).status == "succeeded"
    assert await h.entries(operation_id, LedgerKind.REFUND) == 0


async def _outcomes(h, count: int = 2) -> bool:
    logs = h.logs()
    done = logs.count("Job OK (op-")
    return done >= count


async def test_refunded_operation_run_again_refunds_nothing(harness_factory, images) -> None:
    h = harness_factory(FREE_OPERATIONS_COUNT=0)
    h.start_worker()
    user = h.user()
    operation_id = await h.new_operation(
        user,
        "face_swap",
        [await h.upload(user, images("coffee.jpg")), await h.upload(user, images("hopper.jpg"))],
        balance=1000,
    )
    op = await h.wait_final(operation_id)
    assert op.status == "refunded"

    h.enqueue(operation_id)
    await h.wait_until(lambda: _skipped(h), "the second run to skip", patience=60)
    assert await h.entries(operation_id, LedgerKind.REFUND) == 1
    assert (await h.operation(operation_id)).attempts == 1
    notices = [m for m in await user.bot_messages() if "возвращены" in m.text]
    assert len(notices) == 1


async def _skipped(h) -> bool:
    return "already has an outcome: nothing to do" in h.logs()


async def _charged_in_process(harness_factory, images, monkeypatch):  # type: ignore[no-untyped-def]
    """A charged no-op operation, not queued: the test runs its job in this process."""
    from workers import runtime

    h = harness_factory(JOB_RETRIES=0, FREE_OPERATIONS_COUNT=0)
    monkeypatch.setattr(runtime, "_settings", h.settings)
    user = h.user()
    file_ids = [await h.upload(user, images("hopper.jpg"))]
    operation_id = await h.new_operation(
        user, "retouch", file_ids, hook="noop", balance=1000, enqueue=False
    )
    return h, user, file_ids, operation_id


async def test_a_post_whose_answer_was_lost_counts_as_posted(
    harness_factory, images, monkeypatch, caplog
) -> None:
    """The post commits, then the connection drops before its answer: the retry finds the
    operation already succeeded, and the job says so (not "voided")."""
    from billing import operations
    from workers import run

    h, user, file_ids, operation_id = await _charged_in_process(
        harness_factory, images, monkeypatch
    )
    real = operations.complete_operation
    calls = 0

    async def answer_lost(session, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        posted = await real(session, **kwargs)
        if calls == 1:
            await session.commit()
            raise OSError("connection reset after the commit")
        return posted

    monkeypatch.setattr(operations, "complete_operation", answer_lost)
    result = await run.run_operation(operation_id, file_ids, h.tokens[operation_id])
    assert calls == 2
    assert result["outcome"] == "succeeded"
    assert "voided" not in caplog.text
    op = await h.wait_final(operation_id)
    assert op.status == "succeeded"
    assert await h.entries(operation_id, LedgerKind.REFUND) == 0
    assert [m for m in await user.bot_messages() if m.photo]


async def test_a_job_that_fails_after_its_photo_went_out_is_posted_not_refunded(
    harness_factory, images, monkeypatch
) -> None:
    """The photo is in the chat, then the rest of the send fails: the job wrote its
    "delivered" marker on the photo, so the failure path posts the operation."""
    import json

    import pytest

    from jobqueue import delivered
    from workers import delivery, refunds, run
    from workers.failures import Failure

    h, user, file_ids, operation_id = await _charged_in_process(
        harness_factory, images, monkeypatch
    )

    async def photo_then_failure(*args, on_photo, **kwargs):  # type: ignore[no-untyped-def]
        await on_photo({"photo_message_id": 4242})
        raise RuntimeError("the copy's upload broke the job")

    monkeypatch.setattr(delivery, "send_result", photo_then_failure)
    with pytest.raises(RuntimeError):
        await run.run_operation(operation_id, file_ids, h.tokens[operation_id])
    marker = h.redis.get(delivered.key(operation_id, h.tokens[operation_id]))
    assert marker is not None and json.loads(marker)["photo_message_id"] == 4242
    refund = await refunds.refund_and_notify(h.settings, operation_id, Failure("internal", True))
    assert refund is None
    op = await h.operation(operation_id)
    assert op.status == "succeeded" and op.result_ref == {"photo_message_id": 4242}
    assert await h.entries(operation_id, LedgerKind.REFUND) == 0
