"""RQ's callbacks: a failed attempt, an abandoned job, a killed work-horse.

- :func:`on_job_failure` is the job's ``on_failure`` (RQ runs it after EVERY failed attempt,
  and for an abandoned job when it cleans its started registry): it refunds after the last
  attempt, or at once for a permanent failure, and then cancels the retries left. A Telegram
  flood wait stretches the next retry's interval, or ends the retries when the wait would
  outlast the operation's deadline.
- :func:`on_work_horse_killed` is the worker's ``work_horse_killed_handler`` (RQ calls no
  failure callback when a horse dies: SIGKILL, the OOM killer, a hang past timeout + 60 s).
- A worker that dies with its horse calls nothing: :mod:`workers.sweeper` voids the
  operation at its deadline.

RQ calls these from synchronous code: each refund runs in an event loop of its own.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from aiogram.exceptions import TelegramRetryAfter
from redis import Redis
from rq.exceptions import AbandonedJobError, StopRequested
from rq.job import Job

from billing.settings import Settings
from jobqueue.queue import OPERATION_FUNCTIONS
from workers import runtime
from workers.failures import Failure, classify
from workers.lock import is_held, release_lock
from workers.refunds import refund_and_notify

log = logging.getLogger(__name__)


def operation_id_of(job: Job) -> int | None:
    """The operation a job runs, or None for a job that is not ours."""
    try:
        if job.func_name not in OPERATION_FUNCTIONS or not job.args:
            return None
        return int(job.args[0])
    except Exception:  # noqa: BLE001 - a job we cannot even read is not ours to refund
        return None


def job_key_token(job: Job) -> str | None:
    """The key token a job was queued with (its third argument, also in its id), or the one
    :func:`run_operation` read from the row for a job queued in the old form (``job.meta``,
    seen only in that process). None if neither."""
    try:
        args = job.args or ()
        if len(args) > 2 and isinstance(args[2], str):
            return args[2]
        token = (getattr(job, "meta", None) or {}).get("key_token")
        return token if isinstance(token, str) else None
    except Exception:  # noqa: BLE001 - unreadable: treated as unknown
        return None


def _key_token_of(job: Job, operation_id: int) -> str | None:
    """:func:`job_key_token`, else the row's (a job of the old form, in another process).
    None when not known: the lock is then left to its TTL."""
    token = job_key_token(job)
    if token is not None:
        return token
    try:
        return asyncio.run(runtime.row_key_token(runtime.settings(), operation_id))
    except StopRequested:
        raise
    except Exception:  # noqa: BLE001 - the database may be down
        log.exception("operation %s: key token not readable", operation_id)
        return None


def on_job_failure(job: Job, connection: Redis, exc_type: Any, exc_value: Any, tb: Any) -> None:
    """RQ's on_failure: runs after EVERY failed attempt (and for abandoned jobs when RQ
    cleans its started registry). Refunds after the last attempt, or at once when the
    failure is permanent — then it also cancels the retries left."""
    operation_id = operation_id_of(job)
    if operation_id is None:
        return
    # An abandoned job is reported by whichever worker cleans RQ's registry, not by the
    # process that ran it: that one's lock is not ours to free (and a pid in another
    # container may even be the same number).
    abandoned = isinstance(exc_value, AbandonedJobError)
    key_token = _key_token_of(job, operation_id)
    if not abandoned and key_token is not None:
        try:
            release_lock(connection, operation_id, key_token, holder_pid=os.getpid())
        except Exception:  # noqa: BLE001 - the lock expires by itself
            log.exception("operation %s: lock not released", operation_id)
    failure = classify(exc_value)
    retries_left = job.retries_left or 0
    if failure.transient and retries_left > 0:
        flood = flood_wait(exc_value)
        if flood is not None and not _wait_before_retry(job, flood, runtime.settings()):
            log.warning(
                "operation %s: Telegram asks to wait %s s, past the operation's deadline",
                operation_id,
                flood,
            )
            retries_left = 0
    if failure.transient and retries_left > 0:
        log.warning(
            "operation %s: attempt failed (%s: %s), %s retries left",
            operation_id,
            failure.reason,
            exc_value,
            retries_left,
        )
        return
    # RQ decides on a retry right after this callback, from this very Job object.
    job.retries_left = 0
    if abandoned and _still_running(connection, operation_id, key_token):
        # The worker died but its work-horse (a process group of its own) may live on and
        # deliver: refunding now could pay back a result the user gets. The horse posts or
        # fails by itself; if it dies too, the sweeper voids the operation at its deadline.
        log.warning(
            "operation %s: its job was abandoned, but an execution still holds it: "
            "left to that execution or, past the deadline, to the sweeper",
            operation_id,
        )
        return
    _refund_now(operation_id, failure, detail=repr(exc_value), key_token=key_token)


def _still_running(connection: Redis | None, operation_id: int, key_token: str | None) -> bool:
    """Whether some execution holds the operation's lock (unknown counts as yes: the sweeper
    still voids the operation at its deadline)."""
    if key_token is None:
        return True
    try:
        redis = connection or Redis.from_url(runtime.settings().REDIS_URL)
        return is_held(redis, operation_id, key_token)
    except Exception:  # noqa: BLE001 - Redis down: not known to be free
        log.exception("operation %s: lock not readable", operation_id)
        return True


def flood_wait(exc: BaseException | None) -> int | None:
    """Telegram's ``retry_after`` behind a failure (its flood control), if that is what it was."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, TelegramRetryAfter):
            return int(exc.retry_after)
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def _wait_before_retry(job: Job, seconds: int, settings: Settings) -> bool:
    """Make RQ's next retry of ``job`` wait at least ``seconds`` (plus one), as Telegram asked
    (RQ decides on the retry right after the failure callback, from this Job object).
    False when that wait would run past the operation's deadline: the sweeper could void it
    meanwhile, so the caller refunds now instead. The claim, on the next attempt, measures
    the deadline anew; until then at least the deadline margin is left of it."""
    wait = seconds + 1
    if wait > settings.JOB_DEADLINE_MARGIN_SECONDS / 2:
        return False
    intervals = list(job.retry_intervals or [0])
    index = max(len(intervals) - (job.retries_left or 0), 0)  # RQ's get_retry_interval
    intervals[index] = max(intervals[index], wait)
    job.retry_intervals = intervals
    return True


def on_work_horse_killed(
    job: Job, retpid: int | None, ret_val: int | None, rusage: Any = None
) -> None:
    """The worker's ``work_horse_killed_handler``: it saw its horse die (SIGKILL, OOM, a hang
    past timeout + 60 s). RQ retries the job right after this if it has retries left;
    otherwise this is the last word. Never raises but StopRequested: RQ calls it from the
    worker's own loop, which an exception would end."""
    try:
        _horse_killed(job, retpid, ret_val)
    except StopRequested:
        raise  # SIGTERM meanwhile: RQ's warm shutdown must go on
    except Exception:  # noqa: BLE001
        log.exception("job %s: killed work-horse not handled", job.id)


def _horse_killed(job: Job, retpid: int | None, ret_val: int | None) -> None:
    operation_id = operation_id_of(job)
    if operation_id is None:
        return
    key_token = _key_token_of(job, operation_id)
    try:
        if key_token is not None:
            release_lock(job.connection, operation_id, key_token, holder_pid=retpid)
    except Exception:  # noqa: BLE001
        log.exception("operation %s: lock not released", operation_id)
    if (job.retries_left or 0) > 0:
        log.warning(
            "operation %s: work-horse %s died (%s), %s retries left",
            operation_id,
            retpid,
            ret_val,
            job.retries_left,
        )
        return
    _refund_now(
        operation_id,
        Failure("crashed", True),
        detail=f"work-horse died: {ret_val}",
        key_token=key_token,
    )


# Pauses between the tries of a refund that failed (the database restarting): about 15 s
# in all, then the sweeper's turn. Without them a refund that meets a restart of a few
# seconds waits for the operation's deadline (up to 15 minutes with the production
# settings, the queue wait included) although the database is back long before.
REFUND_RETRY_PAUSES = (1.0, 2.0, 4.0, 8.0)


def _refund_now(
    operation_id: int, failure: Failure, *, detail: str, key_token: str | None = None
) -> None:
    """Refund from synchronous code (a callback), in an event loop of its own; tried again
    after each of :data:`REFUND_RETRY_PAUSES` (a refund is a conditional update: a repeat
    voids nothing twice). Never raises: if the database stays down the sweeper voids the
    operation at its deadline."""
    for pause in (*REFUND_RETRY_PAUSES, None):
        try:
            asyncio.run(
                refund_and_notify(
                    runtime.settings(), operation_id, failure, detail=detail, key_token=key_token
                )
            )
            return
        except StopRequested:
            raise  # SIGTERM in the worker (killed-horse path): RQ's warm shutdown must go on
        except Exception as exc:  # noqa: BLE001
            if pause is None:
                log.exception(
                    "operation %s: refund failed, the sweeper will retry it", operation_id
                )
                return
            log.warning(
                "operation %s: refund failed (%s), again in %s s", operation_id, exc, pause
            )
        time.sleep(pause)
