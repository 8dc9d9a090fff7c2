"""The sweeper reads its list of overdue operations, then voids them one by one (each with a
Telegram notice, retried with back-off). A queued operation in that list whose job claims it
meanwhile (``claim_operation``: running, deadline extended past the job timeout) must not be
voided: its job is about to deliver."""

from __future__ import annotations

from sqlalchemy import func, select, update

from billing import operations
from billing.models import LedgerEntry, LedgerKind, Operation, utcnow
from workers import runtime
from workers.sweeper import sweep_overdue


async def test_operation_claimed_after_the_sweeper_listed_it_is_not_voided(
    harness_factory, images, monkeypatch
) -> None:
    h = harness_factory(FREE_OPERATIONS_COUNT=0, OPERATION_DEADLINE_SECONDS=60)
    user = h.user()
    operation_id = await h.new_operation(
        user, "upscale", [await h.upload(user, images("hopper.jpg"))], balance=1000, enqueue=False
    )
    # The queue was backed up: the operation is still queued when its deadline passes.
    async with h.sessionmaker() as session:
        await session.execute(
            update(Operation)
            .where(Operation.id == operation_id)
            .values(deadline_at=func.now() - func.make_interval(0, 0, 0, 0, 0, 1))
        )
        await session.commit()

    real_overdue = operations.overdue_operations

    async def overdue_then_claimed(session, **kwargs):
        listed = await real_overdue(session, **kwargs)
        assert operation_id in listed
        # Right after the sweeper read its list, a worker dequeues the job and claims it.
        async with h.sessionmaker() as worker_session:
            assert await operations.claim_operation(
                worker_session,
                operation_id=operation_id,
                deadline_seconds=runtime.deadline_seconds(h.settings),
            )
            await worker_session.commit()
        return listed

    monkeypatch.setattr(operations, "overdue_operations", overdue_then_claimed)
    await sweep_overdue(h.settings)

    op = await h.operation(operation_id)
    async with h.sessionmaker() as session:
        refunds = await session.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(
                LedgerEntry.operation_id == operation_id,
                LedgerEntry.kind == LedgerKind.REFUND.value,
            )
        )
    try:
        assert op.deadline_at > utcnow(), "the claim extended the deadline"
        assert (op.status, refunds) == ("running", 0), (
            f"a claimed, running operation was voided by the sweeper: {op.status}, "
            f"{refunds} refund entries"
        )
    finally:
        # Leave the books consistent either way (the engine fixture audits them).
        async with h.sessionmaker() as session:
            await operations.refund_operation(session, operation_id=operation_id, error="cleanup")
            await session.commit()
