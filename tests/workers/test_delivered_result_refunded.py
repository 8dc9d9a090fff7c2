"""A job that DELIVERED its result and then could not post the hold (the database connection
dropped at that moment: a failover, a restart, a network blip) ends in ``on_job_failure``,
which refunds it after the last attempt: the user keeps the picture and gets the money back
("a succeeded operation is never voided" is about the row, but the hold is posted when the
result is delivered). With retries left the job instead runs again and delivers a second
copy. Either way the outcome of an operation hinges on a DB write that happens after the
irreversible Telegram send and is never retried on its own."""

from __future__ import annotations

from sqlalchemy import text

from billing.models import LedgerKind

WAITING_UPDATE = text(
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
    "AND wait_event_type = 'Lock' AND query ILIKE 'UPDATE operations%'"
)


async def test_delivered_result_is_not_refunded_when_posting_fails(
    harness_factory, images
) -> None:
    h = harness_factory(FREE_OPERATIONS_COUNT=0, JOB_RETRIES=0)
    await h.wait_ready(h.start_worker("--no-sweeper"))
    user = h.user()
    operation_id = await h.new_operation(
        user,
        "retouch",
        [await h.upload(user, images("hopper.jpg"))],
        hook="sleep:2",
        balance=1000,
    )
    await h.wait_hook_pid(operation_id)  # claimed and running in its work-horse

    # Hold the operation row so the job's complete_operation waits, then drop its connection.
    async with h.engine.connect() as conn:
        trans = await conn.begin()
        await conn.execute(
            text("SELECT id FROM operations WHERE id = :id FOR UPDATE"), {"id": operation_id}
        )
        delivered = await h.wait_message(user, lambda m: "photo" in m.raw, "the result photo")

        async def blocked_post() -> list[int]:
            async with h.engine.connect() as probe:
                return list((await probe.execute(WAITING_UPDATE)).scalars())

        pids = await h.wait_until(blocked_post, "complete_operation to wait on the row lock")
        async with h.engine.connect() as admin:
            for pid in pids:
                await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await admin.commit()
        await trans.rollback()

    op = await h.wait_final(operation_id)
    refunds = await h.entries(operation_id, LedgerKind.REFUND)
    assert delivered.raw.get("photo"), "the user has the result"
    assert (op.status, refunds) == ("succeeded", 0), (
        f"the delivered result of operation {operation_id} ended {op.status} with "
        f"{refunds} refund entries ({op.error})"
    )
