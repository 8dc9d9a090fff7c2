"""The contract between the bot and the workers: how an operation becomes an RQ job.

The bot imports only this module (no media code); the job function is referenced by its
import path, so the bot process never loads OpenCV.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis import Redis
from rq import Queue, Retry
from rq.job import Callback, Job

from billing.bounds import parse_id
from billing.settings import FAILURE_CALLBACK_SECONDS, Settings

JOB_FUNCTION = "workers.jobs.run_operation"
JOB_PREFIX = "op-"
LOCK_PREFIX = "medialab:op-lock:"  # + key_name: one execution at a time (workers.lock)


def key_name(operation_id: int, key_token: str) -> str:
    """What every Redis key derived from an operation names it by: ``<id>-<key_token>``.

    Ids repeat when a database starts again beside a Redis that kept its keys; the
    operation's random ``key_token`` (migration 0003) does not, so an old key never names a
    new operation."""
    return f"{operation_id}-{key_token}"


def job_id_for(operation_id: int, key_token: str) -> str:
    """One job per operation: enqueueing the same operation twice reuses the id.
    ``op-<id>-<32 hex>``: letters, digits and dashes (RQ's rule), at most 55 characters
    (``operations.job_id`` holds 64)."""
    return f"{JOB_PREFIX}{key_name(operation_id, key_token)}"


def parse_job_id(job_id: str | bytes | None) -> tuple[int, str | None] | None:
    """(operation id, key token) of one of our job ids; the token is None for a job queued
    in the old ``op-<id>`` form (before migration 0003). None if it is not ours."""
    if isinstance(job_id, bytes):
        job_id = job_id.decode(errors="replace")
    if not job_id or not job_id.startswith(JOB_PREFIX):
        return None
    number, _, token = job_id[len(JOB_PREFIX) :].partition("-")
    # Plain ASCII digits within int64 only: str.isdigit() takes "²" (int() then raises) and
    # "١٢", and a 20-digit id overflowed the database's query of the audit's Redis check.
    operation_id = parse_id(number)
    if operation_id is None or (token and not (token.isascii() and token.isalnum())):
        return None
    return operation_id, token or None


def media_queue(redis: Redis, settings: Settings) -> Queue:
    return Queue(settings.RQ_QUEUE, connection=redis)


def enqueue_operation(
    queue: Queue,
    settings: Settings,
    operation_id: int,
    key_token: str,
    *,
    file_ids: Sequence[str] = (),
) -> Job:
    """Put the operation's job on the queue. Raises redis errors when Redis is unreachable.

    ``file_ids``, the operation's Telegram inputs (short ids, never the files), let the job
    start fetching them while it claims the operation; the operation's row stays the truth.
    ``key_token`` (the operation's, from its row) names the job and every key the job
    writes: the job claims only the operation that has this token.
    """
    return queue.enqueue(
        JOB_FUNCTION,
        operation_id,
        list(file_ids),
        key_token,
        job_id=job_id_for(operation_id, key_token),
        job_timeout=settings.JOB_TIMEOUT_SECONDS,
        retry=Retry(
            max=settings.JOB_RETRIES, interval=settings.JOB_RETRY_INTERVALS[: settings.JOB_RETRIES]
        )
        if settings.JOB_RETRIES
        else None,
        on_failure=Callback("workers.jobs.on_job_failure", timeout=FAILURE_CALLBACK_SECONDS),
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
        description=f"operation {operation_id}",
    )
