"""The contract between the bot and the workers: how an operation becomes an RQ job.

The bot imports only this module (no media code); the job function is referenced by its
import path, so the bot process never loads OpenCV.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis import Redis
from rq import Queue, Retry
from rq.job import Callback, Job

from billing.settings import FAILURE_CALLBACK_SECONDS, Settings

JOB_FUNCTION = "workers.jobs.run_operation"


def job_id_for(operation_id: int) -> str:
    """One job per operation: enqueueing the same operation twice reuses the id."""
    return f"op-{operation_id}"


def media_queue(redis: Redis, settings: Settings) -> Queue:
    return Queue(settings.RQ_QUEUE, connection=redis)


def enqueue_operation(
    queue: Queue, settings: Settings, operation_id: int, *, file_ids: Sequence[str] = ()
) -> Job:
    """Put the operation's job on the queue. Raises redis errors when Redis is unreachable.

    ``file_ids``, the operation's Telegram inputs (short ids, never the files), let the job
    start fetching them while it claims the operation; the operation's row stays the truth.
    """
    return queue.enqueue(
        JOB_FUNCTION,
        operation_id,
        *([list(file_ids)] if file_ids else []),
        job_id=job_id_for(operation_id),
        job_timeout=settings.JOB_TIMEOUT_SECONDS,
        retry=Retry(max=settings.JOB_RETRIES, interval=[2, 5, 15][: settings.JOB_RETRIES] or 0)
        if settings.JOB_RETRIES
        else None,
        on_failure=Callback("workers.jobs.on_job_failure", timeout=FAILURE_CALLBACK_SECONDS),
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
        description=f"operation {operation_id}",
    )
