"""The import paths RQ stores with every operation job: keep them valid.

:mod:`jobqueue.queue` names the job function (``JOB_FUNCTION``) and its failure callback by
these strings, and jobs already queued in Redis carry them, so they stay here as the stable
entry points; the code lives in :mod:`workers.run` (the job) and :mod:`workers.callbacks`
(RQ's callbacks), with :mod:`workers.lock` and :mod:`workers.refunds` beside them.
"""

from __future__ import annotations

from workers.ai import poll_model
from workers.callbacks import on_job_failure
from workers.run import deliver_model_result, run_operation

__all__ = ["deliver_model_result", "on_job_failure", "poll_model", "run_operation"]
