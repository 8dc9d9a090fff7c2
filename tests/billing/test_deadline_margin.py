"""The deadline margin (how long past its job's timeout the sweeper leaves an operation
alone) is checked at start-up: 0, negatives and anything shorter than RQ's stuck work-horse
grace plus the failure callback's time stop every process with a clear message."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
import rq.defaults
import rq.worker.worker_classes
from pydantic import ValidationError

from billing.settings import (
    FAILURE_CALLBACK_SECONDS,
    MIN_JOB_DEADLINE_MARGIN_SECONDS,
    RQ_HORSE_KILL_GRACE_SECONDS,
    RQ_JOB_MONITORING_INTERVAL_SECONDS,
    Settings,
)

ROOT = Path(__file__).resolve().parents[2]


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type, call-arg]


@pytest.mark.parametrize("environment", ["development", "production", "test"])
@pytest.mark.parametrize("margin", ["0", "-1", "-150"])
def test_a_margin_of_zero_or_less_is_refused_everywhere(environment, margin):
    with pytest.raises(ValidationError) as info:
        settings(ENVIRONMENT=environment, JOB_DEADLINE_MARGIN_SECONDS=margin)
    assert "JOB_DEADLINE_MARGIN_SECONDS must be greater than 0" in str(info.value)


@pytest.mark.parametrize("environment", ["development", "production"])
@pytest.mark.parametrize("margin", [1, 30, 120, MIN_JOB_DEADLINE_MARGIN_SECONDS - 1])
def test_a_margin_shorter_than_rqs_grace_and_the_callback_is_refused(environment, margin):
    with pytest.raises(ValidationError) as info:
        settings(ENVIRONMENT=environment, JOB_DEADLINE_MARGIN_SECONDS=margin)
    text = str(info.value)
    assert f"JOB_DEADLINE_MARGIN_SECONDS must be at least {MIN_JOB_DEADLINE_MARGIN_SECONDS}" in (
        text
    )
    assert f"(got {margin})" in text


def test_the_default_margin_and_the_minimum_are_accepted():
    assert settings().JOB_DEADLINE_MARGIN_SECONDS >= MIN_JOB_DEADLINE_MARGIN_SECONDS
    chosen = settings(JOB_DEADLINE_MARGIN_SECONDS=MIN_JOB_DEADLINE_MARGIN_SECONDS)
    assert chosen.JOB_DEADLINE_MARGIN_SECONDS == MIN_JOB_DEADLINE_MARGIN_SECONDS


def test_the_test_suite_may_use_short_margins():
    assert (
        settings(ENVIRONMENT="test", JOB_DEADLINE_MARGIN_SECONDS=2).JOB_DEADLINE_MARGIN_SECONDS
        == 2
    )


@pytest.mark.parametrize("value", ["0", "-5"])
def test_a_queue_wait_of_zero_or_less_is_refused(value):
    with pytest.raises(ValidationError) as info:
        settings(OPERATION_DEADLINE_SECONDS=value)
    assert "OPERATION_DEADLINE_SECONDS must be greater than 0" in str(info.value)


def test_the_minimum_is_what_the_installed_rq_does():
    """An RQ upgrade that changes its grace for a stuck work-horse must change the minimum."""
    import workers.__main__ as workers_main
    from jobqueue.queue import enqueue_operation
    from workers.worker import MediaWorker

    monitor = inspect.getsource(rq.worker.worker_classes.Worker.monitor_work_horse)
    assert f"job.timeout + {RQ_HORSE_KILL_GRACE_SECONDS})" in monitor
    assert rq.defaults.DEFAULT_JOB_MONITORING_INTERVAL == RQ_JOB_MONITORING_INTERVAL_SECONDS
    # The worker keeps RQ's default monitoring interval.
    rq_init = inspect.signature(rq.worker.worker_classes.Worker.__init__).parameters
    assert rq_init["job_monitoring_interval"].default == RQ_JOB_MONITORING_INTERVAL_SECONDS
    assert "job_monitoring_interval" not in inspect.getsource(workers_main)
    assert "job_monitoring_interval" not in inspect.getsource(MediaWorker)
    assert "timeout=FAILURE_CALLBACK_SECONDS" in inspect.getsource(enqueue_operation)
    assert MIN_JOB_DEADLINE_MARGIN_SECONDS == (
        RQ_HORSE_KILL_GRACE_SECONDS + RQ_JOB_MONITORING_INTERVAL_SECONDS + FAILURE_CALLBACK_SECONDS
    )


def test_a_worker_with_a_too_small_margin_does_not_start():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOB_", "ENVIRONMENT"))}
    env.update(ENVIRONMENT="development", JOB_DEADLINE_MARGIN_SECONDS="60")
    done = subprocess.run(
        [sys.executable, "-m", "workers", "--burst"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert "JOB_DEADLINE_MARGIN_SECONDS must be at least" in done.stderr, done.stderr


@pytest.mark.parametrize(
    "values",
    [
        {"OPERATION_DEADLINE_SECONDS": "1000000000000"},
        {"JOB_TIMEOUT_SECONDS": "1000000000000"},
        {"JOB_DEADLINE_MARGIN_SECONDS": "1000000000000"},
        {"OPERATION_DEADLINE_SECONDS": "86000", "JOB_TIMEOUT_SECONDS": "400"},
    ],
)
def test_a_deadline_past_a_day_is_refused_at_start_up(values):
    """Without an upper bound, a typo (a deadline of 10^12 s) was accepted and then every
    charge failed with an OverflowError (a date past the calendar's end)."""
    with pytest.raises(ValidationError) as info:
        settings(**values)
    assert "must be at most 86400" in str(info.value)
