"""The import paths RQ stores with every operation job: keep them valid.

:mod:`jobqueue.queue` names the job function (``JOB_FUNCTION``) and its failure callback by
these strings, and jobs already queued in Redis carry them, so they stay here as the stable
entry points; the code lives in :mod:`workers.run` (the job) and :mod:`workers.callbacks`
(RQ's callbacks), with :mod:`workers.lock` and :mod:`workers.refunds` beside them.

The jobs are synchronous here and run their coroutine with :func:`workers.runtime.run_job`:
in a work-horse in a loop of its own, in the worker's own process (a hosted model's submit,
its delivery, its poll) on the loop that process keeps, with its connections.
"""

from __future__ import annotations

from typing import Any

from rq import Retry, get_current_job

from jobqueue.queue import HOSTED
from workers import ai, run, runtime
from workers.callbacks import on_job_failure


def run_operation(
    operation_id: int, file_ids: list[str] | None = None, key_token: str | None = None
) -> dict[str, Any] | Retry:
    """The operation's job (:func:`workers.run.run_operation`). Queued as a hosted model's
    submit but found to run locally (the worker's catalogue or settings differ from the
    bot's): put back on the queue once, for a work-horse to run (RQ's Retry)."""
    try:
        return runtime.run_job(run.run_operation(operation_id, file_ids, key_token))
    except run.RunInAHorse:
        job = get_current_job()
        if job is None:
            raise
        job.meta[HOSTED] = False
        job.save_meta()
        return Retry(max=(job.number_of_retries or 0) + 1)


def deliver_model_result(
    operation_id: int, file_ids: list[str] | None = None, key_token: str | None = None
) -> dict[str, Any]:
    """:func:`workers.run.deliver_model_result`."""
    return runtime.run_job(run.deliver_model_result(operation_id, file_ids, key_token))


def poll_model(
    operation_id: int, key_token: str, model_id: str, request_id: str
) -> dict[str, Any]:
    """:func:`workers.ai.poll_model`."""
    return runtime.run_job(ai.poll_model(operation_id, key_token, model_id, request_id))


__all__ = ["deliver_model_result", "on_job_failure", "poll_model", "run_operation"]
