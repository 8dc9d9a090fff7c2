"""The RQ worker class of Media Lab: a forking ``rq.Worker`` that sweeps overdue operations,
sends the payment messages the web server did not get out, outlives a lost Redis and keeps
no secret in the tracebacks RQ stores.

Not every job forks. A hosted model's jobs — the submit of an operation queued as hosted
(``job.meta[HOSTED]``), the delivery of its result, the poll of its status — are short
network calls (tens of milliseconds): the worker performs them in its own process, as RQ's
``SimpleWorker`` does (``prepare_execution`` + ``perform_job``: the same bookkeeping, the
job's timeout by SIGALRM, its callbacks and retries), on an event loop it keeps with its
connections (:func:`workers.runtime.run_job`). A fork per such job cost more than the job
(bench/submit_phases.py: a bare fork + wait ~40 ms, a forking no-op job ~80 ms, the
in-process no-op 4 ms, the submit itself ~50 ms, under load ~9), and it bounded what one
worker keeps in flight on the models. The operations that run locally still fork: CPU-bound
work that may crash or hang is a work-horse's, killed and refunded as before.

A killed work-horse is refunded through RQ's public ``work_horse_killed_handler`` (given by
the composition root, :mod:`workers.__main__`: :func:`workers.callbacks.on_work_horse_killed`).

The sweeper runs in RQ's maintenance step, which the worker reaches between jobs: the
maintenance interval is SWEEP_INTERVAL_SECONDS and an idle worker wakes up from its
dequeue at least that often. RQ's own maintenance (cleaning the started registry, which
retries or fails abandoned jobs through ``on_job_failure``) runs in the same step, and so
does the payment-notice pass (:mod:`workers.notices`) and, every
PLAN_RENEWAL_INTERVAL_SECONDS, the plans pass (:mod:`workers.plans`: renewals, ends,
expiries, free renewals), and every PAYMENT_RECHECK_INTERVAL_SECONDS, when YooKassa is
configured, the safety net for lost payment notifications (:mod:`workers.payment_checks`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError
from rq import Worker
from rq.exceptions import StopRequested
from rq.job import Job
from rq.worker import WorkerStatus

from billing import redaction
from billing.settings import Settings
from jobqueue.queue import DELIVER_FUNCTION, HOSTED, JOB_FUNCTION, POLL_FUNCTION
from workers import runtime
from workers.notices import deliver_due_notices
from workers.payment_checks import check_payments, expire_stars_invoices
from workers.plans import renew_due_plans
from workers.sweeper import sweep_overdue

log = logging.getLogger(__name__)


def in_own_process(job: Job) -> bool:
    """Whether the worker performs ``job`` itself rather than in a forked work-horse: the
    short network jobs of a hosted model."""
    name = job.func_name
    if name in (DELIVER_FUNCTION, POLL_FUNCTION):
        return True
    return name == JOB_FUNCTION and bool((job.meta or {}).get(HOSTED))


# A second stop signal this soon after the first is the same stop sent twice (a process
# group's and a parent's death signal): RQ ignores it for a second too.
REPEATED_SIGNAL_SECONDS = 1.0


class MediaWorker(Worker):
    """``rq.Worker`` + the deadline sweeper + restarts after a lost Redis."""

    def __init__(
        self, *args: Any, settings: Settings | None = None, sweep: bool = True, **kwargs: Any
    ):
        # settings is optional only because RQ rebuilds workers from Redis (Worker.all()).
        self.settings = settings
        self.stop_asked = False  # a SIGTERM/SIGINT came: RQ's loop is not started again
        self._in_passes = False  # run_maintenance_tasks is running
        self._deferred_stop: tuple[Any, Any, float] | None = None  # a signal that came then
        self._cold_stop = False
        self.sweep = sweep and settings is not None
        self._plans_due_at: float | None = None  # monotonic; None: at the first maintenance
        self._payment_checks_due_at: float | None = None  # the same, for the payment checks
        if self.sweep and settings is not None:
            kwargs.setdefault("maintenance_interval", settings.SWEEP_INTERVAL_SECONDS)
        super().__init__(*args, **kwargs)

    @property
    def dequeue_timeout(self) -> int:
        # BLPOP's timeout is whole seconds; an idle worker must wake up to sweep.
        base = max(1, self.worker_ttl - 15)
        if not self.sweep:
            return base
        return max(1, min(base, math.ceil(self.maintenance_interval)))

    def work(self, burst: bool = False, *args: Any, **kwargs: Any) -> bool:
        """RQ's work loop, started again when it ends on a lost Redis.

        RQ retries a lost Redis only while it waits for a job; a Redis error while it
        watches a work-horse or cleans its registries ends the loop ("found an unhandled
        exception, quitting") — and with it the sweeper. Unless a stop was asked for (a
        signal) or this is a burst run, wait for Redis and start the loop again, under the
        same name. The horse that was running finishes on its own; its operation ends by
        the job itself or by the sweeper.
        """
        worked = False
        while True:
            try:
                worked = bool(super().work(burst, *args, **kwargs)) or worked
            except (RedisError, OSError) as exc:
                log.error("worker %s: lost Redis: %s", self.name, exc)
            if burst or self.stop_asked or kwargs.get("max_jobs"):
                runtime.close_kept()
                return worked
            log.error("worker %s: RQ's loop ended unasked; starting it again", self.name)
            if not self._wait_for_redis():
                return worked
            with contextlib.suppress(RedisError, OSError):
                self.register_death()  # so the same name may register again

    def execute_job(self, job: Job, queue: Any) -> None:
        """Fork a work-horse for the job (RQ's ``Worker``), or, for a hosted model's short
        job, perform it here as RQ's ``SimpleWorker.execute_job`` does."""
        if not in_own_process(job):
            super().execute_job(job, queue)
            return
        self.prepare_execution(job)
        with runtime.in_process():
            self.perform_job(job, queue)
        self.set_state(WorkerStatus.IDLE)

    def request_stop(self, signum: Any, frame: Any) -> None:
        """RQ's signal handler (warm shutdown): an idle worker's stop is StopRequested,
        raised wherever the main thread is. During the maintenance passes it waits for the
        pass that runs to end: raised inside one of its event loop's own callbacks (a
        socket's read or write, a ``call_soon``), asyncio took it for a broken connection or
        logged it and went on, and the stop was lost: the worker ran on until SIGKILL. A
        second signal meanwhile is a cold shutdown, as in RQ (one within a second is the same
        stop sent twice, as RQ takes it)."""
        self.stop_asked = True
        if not self._in_passes:
            super().request_stop(signum, frame)
            return
        if self._deferred_stop is None:
            self._deferred_stop = (signum, frame, time.monotonic())
            log.info("worker %s: stopping after the maintenance pass that runs", self.name)
            return
        if time.monotonic() - self._deferred_stop[2] < REPEATED_SIGNAL_SECONDS:
            return
        self._cold_stop = True
        log.warning("worker %s: cold shut down during its maintenance", self.name)
        raise SystemExit()

    def _wait_for_redis(self) -> bool:
        """Ping Redis with back-off until it answers; False if a stop is asked meanwhile."""
        delay = 0.5
        while True:
            try:
                self.connection.ping()
                return True
            except (RedisError, OSError):
                pass
            try:
                time.sleep(delay)
            except (StopRequested, RedisError, OSError):
                pass  # RQ's signal handler: it may fail to record the stop in Redis, too
            if self.stop_asked:
                return False
            delay = min(delay * 2, 10.0)

    def run_maintenance_tasks(self) -> None:
        self._in_passes = True
        try:
            super().run_maintenance_tasks()
            self._stop_if_asked()
            if self.sweep and self.settings is not None:
                self._run_pass("sweeper", sweep_overdue)
                self._renew_plans_when_due()
                self._check_payments_when_due()
                self._run_pass("payment notices", deliver_due_notices)
        finally:
            self._in_passes = False
            self._stop_if_asked()  # also when a pass raised: the stop asked for wins

    def _run_pass(self, name: str, run: Callable[[Settings], Awaitable[Any]]) -> None:
        """One maintenance pass on an event loop of its own; a failure is logged (the next
        maintenance step tries again), a stop asked for meanwhile is carried out after it."""
        assert self.settings is not None
        try:
            asyncio.run(run(self.settings))
        except StopRequested:
            raise  # never swallowed: whatever raised it means the worker to stop
        except Exception:  # noqa: BLE001 - never stop the worker; the next pass retries
            log.exception("%s: pass failed", name)
        self._stop_if_asked()

    def _stop_if_asked(self) -> None:
        if self._deferred_stop is None or self._cold_stop:
            return
        signum, frame, _ = self._deferred_stop
        self._deferred_stop = None
        super().request_stop(signum, frame)  # raises StopRequested (the worker is idle)

    def _renew_plans_when_due(self) -> None:
        """The plans pass (:mod:`workers.plans`), at most once per
        PLAN_RENEWAL_INTERVAL_SECONDS: RQ's maintenance step is the schedule (it runs every
        SWEEP_INTERVAL_SECONDS), so a shorter interval means every maintenance step."""
        assert self.settings is not None
        now = time.monotonic()
        if self._plans_due_at is not None and now < self._plans_due_at:
            return
        self._plans_due_at = now + self.settings.PLAN_RENEWAL_INTERVAL_SECONDS
        self._run_pass("plans", renew_due_plans)

    def _check_payments_when_due(self) -> None:
        """The safety net for lost payment notifications (:mod:`workers.payment_checks`),
        at most once per PAYMENT_RECHECK_INTERVAL_SECONDS, when YooKassa is configured; and
        the expiry of unpaid Stars invoices, when Stars are offered."""
        assert self.settings is not None
        yookassa, stars = self.settings.yookassa_configured, self.settings.stars_enabled
        if not (yookassa or stars):
            return
        now = time.monotonic()
        if self._payment_checks_due_at is not None and now < self._payment_checks_due_at:
            return
        self._payment_checks_due_at = now + self.settings.PAYMENT_RECHECK_INTERVAL_SECONDS
        for wanted, name, run in (
            (yookassa, "payment checks", check_payments),
            (stars, "stars invoices", expire_stars_invoices),
        ):
            if wanted:
                self._run_pass(name, run)

    def handle_job_failure(
        self, job: Job, queue: Any, started_job_registry: Any = None, exc_string: str = ""
    ) -> None:
        # RQ keeps this traceback in Redis for days (the job's failure result): no secret
        # in it, as in the log (billing.redaction).
        super().handle_job_failure(
            job,
            queue,
            started_job_registry=started_job_registry,
            exc_string=redaction.redact(exc_string),
        )
