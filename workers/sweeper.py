"""The sweeper: voids the holds of operations that never reached an outcome.

A worker killed together with its work-horse leaves its operation "running" and its job in
RQ's started registry, and nobody calls a failure callback (RQ's own maintenance, which
runs just before the sweeper, cleans that registry: the abandoned job is retried, or failed
with ``on_job_failure`` called — which refunds only if no execution holds the operation's
lock, since a horse may outlive its worker and still deliver; otherwise that is left here).
Each pass of the sweeper refunds every operation still queued or running past its deadline
(``operations.overdue_operations`` + ``operations.refund_operation``) and tells the user;
an operation that waited on a hosted model has that model's request cancelled after its
refund (``workers.ai.cancel_model_call``: no more work on it, no webhook).

A pass is safe to run anywhere, any number of times: the refund is a conditional update, and
a claimed operation's deadline lies past its job's timeout (``runtime.deadline_seconds``),
so the sweeper never voids an operation whose job may still deliver; a succeeded operation
is never voided.

``python -m workers`` runs it from the worker's maintenance loop every
SWEEP_INTERVAL_SECONDS (:class:`workers.worker.MediaWorker`), in the worker's main thread
between jobs. Not in a thread: a forking worker with a busy thread forks work-horses that
inherit that thread's held locks, and they hang (seen here with a sweeper thread).
"""

from __future__ import annotations

import logging
from datetime import datetime

from rq.exceptions import StopRequested

from billing import operations
from billing.models import utcnow
from billing.operations import RefundResult
from billing.settings import Settings
from jobqueue.delivered import MarkerUnreadable
from workers.ai import cancel_model_call
from workers.failures import Failure
from workers.refunds import void_and_notify
from workers.runtime import resources

log = logging.getLogger(__name__)

DEADLINE = Failure("deadline", False)


async def sweep_overdue(
    settings: Settings, *, now: datetime | None = None, limit: int = 100
) -> list[RefundResult]:
    """Refund operations past their deadline; returns the refunds this pass made."""
    done: list[RefundResult] = []
    now = now or utcnow()
    async with resources(settings) as (sessionmaker, bot):
        async with sessionmaker() as session:
            overdue = await operations.overdue_operations(session, now=now, limit=limit)
        for operation_id in overdue:
            try:
                # Re-checked in the refund's own update: a job may have claimed the
                # operation (and extended its deadline) since it was listed.
                refund = await void_and_notify(
                    sessionmaker,
                    bot,
                    operation_id,
                    DEADLINE,
                    detail="deadline passed",
                    only_if_overdue_at=now,
                    redis_url=settings.REDIS_URL,
                )
            except StopRequested:
                raise  # SIGTERM mid-pass: the worker's warm shutdown goes first
            except MarkerUnreadable:
                # Redis does not answer: every other operation would wait out the same
                # timeouts in the worker's main thread. The next pass tries them all again.
                log.warning("sweeper: Redis does not answer; pass ended, nothing voided")
                break
            except Exception:  # noqa: BLE001 - one bad row must not stop the sweep
                log.exception("sweeper: operation %s not voided", operation_id)
                continue
            if refund is not None:
                done.append(refund)
                try:
                    await cancel_model_call(settings, sessionmaker, operation_id)
                except StopRequested:
                    raise
                except Exception:  # noqa: BLE001 - best effort: a late webhook changes nothing
                    log.warning("sweeper: operation %s: model not cancelled", operation_id)
    if done:
        log.warning("sweeper: voided %s overdue operations", len(done))
    return done
