"""The contract between the bot and the workers: how an operation becomes an RQ job.

The bot imports only this module (no media code); the job function is referenced by its
import path, so the bot process never loads OpenCV.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Callback, Job, JobStatus

from billing.bounds import parse_id
from billing.settings import FAILURE_CALLBACK_SECONDS, Settings

JOB_FUNCTION = "workers.jobs.run_operation"
# An AI operation's second half: deliver what the model made (enqueued by the webhook or the
# status poll), and the poll itself (scheduled after the submit, in case the webhook is lost).
DELIVER_FUNCTION = "workers.jobs.deliver_model_result"
POLL_FUNCTION = "workers.jobs.poll_model"
OPERATION_FUNCTIONS = (JOB_FUNCTION, DELIVER_FUNCTION)  # their args: (id, file ids, token)
# ``job.meta[HOSTED]``: the operation runs on a hosted model, so its job only submits it (a
# short HTTP call): the worker runs it in its own process, without a fork (workers.worker).
HOSTED = "hosted"
DELIVER_PREFIX = "dl-"
PENDING = (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED)
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
    hosted: bool = False,
) -> Job:
    """Put the operation's job on the queue. Raises redis errors when Redis is unreachable.

    ``file_ids``, the operation's Telegram inputs (short ids, never the files), let the job
    start fetching them while it claims the operation; the operation's row stays the truth.
    ``key_token`` (the operation's, from its row) names the job and every key the job
    writes: the job claims only the operation that has this token. ``hosted``: the
    operation runs on a hosted model (the model its charge recorded): its job submits it and
    ends, in the worker's own process (``job.meta[HOSTED]``).
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
        meta={HOSTED: True} if hosted else None,
    )


def delivery_job_id(operation_id: int, key_token: str) -> str:
    """One delivery job per operation: the webhook and the poll enqueueing it both (or fal's
    re-deliveries) name the same job."""
    return f"{DELIVER_PREFIX}{key_name(operation_id, key_token)}"


def enqueue_delivery(
    queue: Queue, settings: Settings, operation_id: int, key_token: str, *, again: bool = False
) -> Job | None:
    """Queue the delivery of a model's recorded outcome: download the picture, send it, post
    the hold — or refund a refusal. A short job; its failures refund as the operation
    job's do (same arguments, same callback).

    ``again``: the outcome was recorded earlier (a re-delivered webhook, the poll): queued
    only if its delivery job is not already waiting or running (None then) — the enqueue
    that followed the record may have been lost with Redis."""
    job_id = delivery_job_id(operation_id, key_token)
    if again:
        try:
            status = Job.fetch(job_id, connection=queue.connection).get_status()
        except NoSuchJobError:
            status = None
        if status in PENDING:
            return None
    return queue.enqueue(
        DELIVER_FUNCTION,
        operation_id,
        [],
        key_token,
        job_id=job_id,
        job_timeout=settings.JOB_TIMEOUT_SECONDS,
        retry=Retry(max=settings.JOB_RETRIES, interval=[2, 5, 15][: settings.JOB_RETRIES] or 0)
        if settings.JOB_RETRIES
        else None,
        on_failure=Callback("workers.jobs.on_job_failure", timeout=FAILURE_CALLBACK_SECONDS),
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
        description=f"deliver operation {operation_id}",
        # Ahead of the queued submits: a result that is ready waits for no model call to be
        # sent (200 submits queued at once kept results 67 s from the chat, bench/ai.py).
        at_front=True,
    )


def schedule_poll(
    queue: Queue,
    operation_id: int,
    key_token: str,
    model_id: str,
    request_id: str,
    *,
    after_seconds: float,
) -> Job:
    """Ask the model's queue about the operation's request after a while (RQ's scheduler):
    the safety net for a webhook that never comes."""
    return queue.enqueue_in(
        timedelta(seconds=after_seconds),
        POLL_FUNCTION,
        operation_id,
        key_token,
        model_id,
        request_id,
        job_timeout=60,
        result_ttl=600,
        failure_ttl=24 * 3600,
        description=f"poll the model of operation {operation_id}",
    )
