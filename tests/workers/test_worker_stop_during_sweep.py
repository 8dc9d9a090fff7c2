"""A stop asked for while the worker runs its maintenance passes (the sweeper, plans,
payment checks and notices between jobs) stops it: never swallowed by a pass's error
handling, never lost inside the passes' event loops, and carried out once the pass that runs
ends. Found by the worker-kill scenario (the sweeper's ``except Exception`` ate RQ's
StopRequested) and by test teardowns that waited 30 s for a worker to stop (asyncio ate it)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import pytest
from redis import Redis
from rq.exceptions import StopRequested

from jobqueue.queue import media_queue
from tests.conftest import make_settings
from workers import worker as worker_module
from workers.worker import MediaWorker


@pytest.fixture
def maintained_worker(db_url: str, redis_url: str) -> Iterator[MediaWorker]:
    """A worker of ``python -m workers``'s class, its maintenance run by the test."""
    settings = make_settings(db_url, redis_url, SWEEP_INTERVAL_SECONDS=1, RQ_QUEUE="stop-test")
    connection = Redis.from_url(redis_url)
    try:
        yield MediaWorker(
            [media_queue(connection, settings)], connection=connection, settings=settings
        )
    finally:
        connection.close()


def test_a_stop_requested_during_a_sweep_stops_the_worker(
    maintained_worker: MediaWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    passes: list[str] = []

    async def interrupted_sweep(_settings: object) -> list[object]:
        passes.append("sweep")
        raise StopRequested()  # a pass's own code may raise it: never swallowed

    monkeypatch.setattr(worker_module, "sweep_overdue", interrupted_sweep)
    with pytest.raises(StopRequested):
        maintained_worker.run_maintenance_tasks()
    assert passes == ["sweep"]


def test_a_failing_sweep_does_not_stop_the_worker(
    maintained_worker: MediaWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    passes: list[str] = []

    async def broken_sweep(_settings: object) -> list[object]:
        passes.append("sweep")
        raise RuntimeError("database unreachable")

    monkeypatch.setattr(worker_module, "sweep_overdue", broken_sweep)
    maintained_worker.run_maintenance_tasks()  # logged, not raised: the next pass retries
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
    maintained_worker: MediaWorker,
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
    worker = maintained_worker
    try:
        signal.signal(signal.SIGTERM, worker.request_stop)  # as RQ's work() installs it
        with pytest.raises(SystemExit if ends == "cold" else StopRequested):
            worker.run_maintenance_tasks()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    assert worker.stop_asked
    assert passes == (["sweep"] if ends == "cold" else ["sweep", "sweep ended"])
