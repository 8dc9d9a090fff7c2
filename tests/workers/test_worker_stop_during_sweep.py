"""A stop asked for while the worker runs its maintenance passes (the sweeper, plans,
payment checks and notices between jobs) stops it: never swallowed by a pass's error
handling, never lost inside the passes' event loops, and carried out once the pass that runs
ends. Found by the worker-kill scenario (the sweeper's ``except Exception`` ate RQ's
StopRequested) and by test teardowns that waited 30 s for a worker to stop (asyncio ate it)."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
from redis import Redis
from rq.exceptions import StopRequested

from jobqueue.queue import media_queue
from tests.conftest import make_settings
from workers import worker as worker_module
from workers.worker import MediaWorker


def test_a_stop_requested_during_a_sweep_stops_the_worker(
    db_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(db_url, redis_url, SWEEP_INTERVAL_SECONDS=1, RQ_QUEUE="stop-test")
    passes: list[str] = []

    async def interrupted_sweep(_settings: object) -> list[object]:
        passes.append("sweep")
        raise StopRequested()  # what RQ's SIGTERM handler raises mid-pass

    monkeypatch.setattr(worker_module, "sweep_overdue", interrupted_sweep)
    connection = Redis.from_url(redis_url)
    try:
        worker = MediaWorker(
            [media_queue(connection, settings)], connection=connection, settings=settings
        )
        with pytest.raises(StopRequested):
            worker.run_maintenance_tasks()
    finally:
        connection.close()
    assert passes == ["sweep"]


def test_a_failing_sweep_does_not_stop_the_worker(
    db_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(db_url, redis_url, SWEEP_INTERVAL_SECONDS=1, RQ_QUEUE="stop-test")

    passes: list[str] = []

    async def broken_sweep(_settings: object) -> list[object]:
        passes.append("sweep")
        raise RuntimeError("database unreachable")

    monkeypatch.setattr(worker_module, "sweep_overdue", broken_sweep)
    connection = Redis.from_url(redis_url)
    try:
        worker = MediaWorker(
            [media_queue(connection, settings)], connection=connection, settings=settings
        )
        worker.run_maintenance_tasks()  # logged, not raised: the next pass retries
    finally:
        connection.close()
    assert passes == ["sweep"]


@pytest.mark.parametrize(
    ("signals", "repeat_window", "ends"),
    [
        (1, 1.0, "warm"),
        (2, 1.0, "warm"),  # twice at once: one stop sent twice, as RQ takes it
        (2, 0.0, "cold"),  # a second stop asked for: a cold shutdown
    ],
)
def test_a_sigterm_inside_an_event_loop_callback_stops_the_worker_after_the_pass(
    db_url: str,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    signals: int,
    repeat_window: float,
    ends: str,
) -> None:
    """The real signal, where it landed in the test runs that waited 30 s for a worker to
    stop: inside one of the pass's event loop callbacks. asyncio logged the StopRequested
    raised there ("Exception in callback") and went on; the pass ended normally, and the
    worker never stopped. Now the pass finishes, then the worker stops before the next pass;
    a second signal meanwhile is a cold shutdown."""
    settings = make_settings(db_url, redis_url, SWEEP_INTERVAL_SECONDS=1, RQ_QUEUE="stop-test")
    passes: list[str] = []

    async def signalled_sweep(_settings: object) -> list[object]:
        passes.append("sweep")
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        for _ in range(signals):  # os.kill of this process runs the handler before it returns
            loop.call_soon(os.kill, os.getpid(), signal.SIGTERM)
        loop.call_soon(lambda: done.done() or done.set_result(None))
        await done
        passes.append("sweep ended")
        return []

    async def notices(_settings: object) -> None:
        passes.append("notices")

    monkeypatch.setattr(worker_module, "sweep_overdue", signalled_sweep)
    monkeypatch.setattr(worker_module, "deliver_due_notices", notices)
    monkeypatch.setattr(worker_module, "REPEATED_SIGNAL_SECONDS", repeat_window)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    connection = Redis.from_url(redis_url)
    try:
        worker = MediaWorker(
            [media_queue(connection, settings)], connection=connection, settings=settings
        )
        signal.signal(signal.SIGTERM, worker.request_stop)  # as RQ's work() installs it
        with pytest.raises(SystemExit if ends == "cold" else StopRequested):
            worker.run_maintenance_tasks()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        connection.close()
    assert worker.stop_asked
    assert passes == (["sweep"] if ends == "cold" else ["sweep", "sweep ended"])
