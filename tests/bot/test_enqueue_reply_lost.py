"""Redis took the job but its reply was lost (a socket timeout after the command went out):
``BilledOperation.enqueue`` refunds at once. If a worker has already claimed the job, the
refund voids a RUNNING operation (``refund_operation`` accepts queued or running) and the
job then delivers a result that was given back: the user gets the picture, the money and a
"queue is down, nothing was charged" message. After a failed enqueue the bot should void
only an operation that is still queued."""

from __future__ import annotations

import asyncio

from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue
from sqlalchemy import func, select

from billing import operations
from billing.db import make_engine, make_sessionmaker
from billing.models import LedgerEntry, LedgerKind
from bot.app import make_queue
from tests.conftest import make_settings


class ReplyLostQueue(Queue):
    """Enqueues for real; a worker claims the operation at once; then the reply is lost."""

    database_url: str = ""

    def enqueue(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        job = super().enqueue(*args, **kwargs)
        operation_id = int(args[1])

        async def claim() -> None:
            engine = make_engine(self.database_url)
            try:
                async with make_sessionmaker(engine)() as session:
                    assert await operations.claim_operation(
                        session, operation_id=operation_id, deadline_seconds=300
                    )
                    await session.commit()
            finally:
                await engine.dispose()

        asyncio.run(claim())  # runs in the thread billed() hands the RQ call to
        assert job.id == f"op-{operation_id}-{args[3]}"
        raise RedisTimeoutError("Timeout reading from socket")


async def test_lost_enqueue_reply_does_not_void_a_running_operation(
    start_bot, tg, photo: bytes, db_url: str, redis_url: str
) -> None:
    probe = make_queue(make_settings(db_url, redis_url))
    queue = ReplyLostQueue(probe.name, connection=probe.connection)
    queue.database_url = db_url
    app = await start_bot(queue=queue)
    user = tg.user(9301)
    await user.send_text("/start")
    menu = await user.wait_for_text("Что сделаем?")
    await user.press(menu, text="✨ Ретушь")
    await user.wait_for_text("портрет")
    await user.send_photo(photo)
    # Wait until the photo's update (charge, enqueue, whatever followed) is handled.
    assert app.feed is not None
    await app.feed.idle()

    [operation] = await app.operations()
    async with app.sessionmaker() as session:
        refunds = await session.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(
                LedgerEntry.operation_id == operation.id,
                LedgerEntry.kind == LedgerKind.REFUND.value,
            )
        )
    assert app.job_ids() == [f"op-{operation.id}-{operation.key_token}"], "Redis holds the job"
    assert (operation.status, refunds) == ("running", 0), (
        f"the running operation was {operation.status} with {refunds} refund entries"
    )
