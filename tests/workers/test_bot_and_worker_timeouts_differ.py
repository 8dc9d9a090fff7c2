"""The bot and the workers read their own settings (other hosts, other ``.env`` files, or a
JOB_TIMEOUT_SECONDS changed while jobs were queued). RQ's SIGALRM and the job's watchdog use
the timeout the job carries (set by the bot at enqueue); the claim's deadline must too, or
the sweeper voids an operation that the worker then delivers: the user gets the result and
the money back. Whichever way round the timeouts differ, with sweepers running, an operation
is delivered and posted, or refunded and not delivered — never both."""

from __future__ import annotations

import pytest
from rq.registry import StartedJobRegistry

from billing.models import LedgerKind
from jobqueue.queue import media_queue

MARGIN = 2  # seconds: the sweeper (every 0.5 s) voids a claimed operation soon after this
SLEEP = 8  # seconds the operation runs: past the short worker's deadline (3 + MARGIN)

# python -m workers itself: see tests/workers/conftest.py
pytestmark = pytest.mark.real_worker


async def _outcome(h, user, operation_id: int) -> dict[str, object]:
    op = await h.wait_final(operation_id)
    queue = media_queue(h.redis, h.settings)

    async def job_done() -> bool:  # nothing more can reach the chat after this
        return queue.count == 0 and StartedJobRegistry(queue=queue).count == 0

    await h.wait_until(job_done, f"the job of operation {operation_id} to end")
    messages = await h.bot_messages(user)
    return {
        "status": op.status,
        "delivered_at": op.delivered_at,
        "refunds": await h.entries(operation_id, LedgerKind.REFUND),
        "photos": sum(1 for m in messages if m.raw.get("photo")),
        "refund notices": sum(1 for m in messages if "возвращены" in m.text),
    }


def _never_both(outcome: dict[str, object]) -> bool:
    delivered_and_posted = (
        outcome["status"] == "succeeded"
        and outcome["photos"] == 1
        and (outcome["refunds"] == 0 and outcome["refund notices"] == 0)
    )
    refunded_not_delivered = (
        outcome["status"] == "refunded"
        and outcome["photos"] == 0
        and (outcome["refunds"] == 1 and outcome["delivered_at"] is None)
    )
    return delivered_and_posted or refunded_not_delivered


async def test_a_job_past_its_workers_deadline_is_delivered_or_refunded_never_both(
    harness_factory, images
) -> None:
    # The bot queues with 30 s; this worker's own setting says 3 s.
    long_bot = harness_factory(
        JOB_TIMEOUT_SECONDS=30,
        JOB_DEADLINE_MARGIN_SECONDS=MARGIN,
        FREE_OPERATIONS_COUNT=0,
        RQ_QUEUE="media-long-bot",
    )
    # The bot queues with 3 s; this worker's own setting says 30 s.
    short_bot = harness_factory(
        JOB_TIMEOUT_SECONDS=3,
        JOB_DEADLINE_MARGIN_SECONDS=MARGIN,
        FREE_OPERATIONS_COUNT=0,
        RQ_QUEUE="media-short-bot",
    )
    # Both workers sweep (every operation, whichever queue it came from) while idle.
    # (One harness starts both, so their names in RQ differ.)
    short_worker = long_bot.start_worker(JOB_TIMEOUT_SECONDS=3)
    long_worker = long_bot.start_worker(JOB_TIMEOUT_SECONDS=30, RQ_QUEUE="media-short-bot")
    await long_bot.wait_ready(short_worker)
    await long_bot.wait_ready(long_worker)

    long_user, short_user = long_bot.user(), long_bot.user()  # two chats
    photo = images("hopper.jpg")
    long_op = await long_bot.new_operation(
        long_user,
        "retouch",
        [await long_bot.upload(long_user, photo)],
        hook=f"sleep:{SLEEP}",
        balance=1000,
    )
    short_op = await short_bot.new_operation(
        short_user,
        "retouch",
        [await short_bot.upload(short_user, photo)],
        hook=f"sleep:{SLEEP}",
        balance=1000,
    )

    long_outcome = await _outcome(long_bot, long_user, long_op)
    short_outcome = await _outcome(short_bot, short_user, short_op)
    logs = long_bot.logs()
    assert _never_both(long_outcome), (
        f"queued with 30 s, run by a 3 s worker: {long_outcome}\n{logs}"
    )
    assert _never_both(short_outcome), (
        f"queued with 3 s, run by a 30 s worker: {short_outcome}\n{logs}"
    )
    # The job carries 30 s: it has the time to deliver, and the sweeper leaves it alone.
    assert long_outcome["status"] == "succeeded" and long_outcome["delivered_at"] is not None
    # The job carries 3 s: its watchdog stops it before anything is sent.
    assert short_outcome["status"] == "refunded"
    assert "voided (refunded)" not in logs and "already voided" not in logs
