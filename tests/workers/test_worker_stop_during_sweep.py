"""Found by the worker-kill scenario: a SIGTERM that lands while the sweeper runs (RQ's
handler raises ``StopRequested`` from wherever the worker is) was swallowed by the sweeper's
``except Exception``, so the worker ignored the warm shutdown and ran on until SIGKILL —
in production, ``docker stop`` would then kill it in the middle of a job."""

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


def test_a_sigterm_inside_an_event_loop_callback_stops_the_worker_after_the_pass(
    db_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real signal, landing where it landed in the test runs that waited 30 s for a
    worker to stop: inside one of the pass's event loop callbacks. asyncio logged the
    StopRequested raised there ("Exception in callback") and went on; the pass ended
    normally and the worker with it never stopped. Now the pass finishes, then the worker
    stops; a second signal meanwhile is a cold shutdown."""
    settings = make_settings(db_url, redis_url, SWEEP_INTERVAL_SECONDS=1, RQ_QUEUE="stop-test")
    passes: list[str] = []
    signals = [1]

    async def signalled_sweep(_settings: object) -> list[object]:
        passes.append("sweep")
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        for _ in signals:  # os.kill of this process runs the handler before it returns
            loop.call_soon(os.kill, os.getpid(), signal.SIGTERM)
        loop.call_soon(lambda: done.done() or done.set_result(None))
        await done
        passes.append("sweep ended")
        return []

    monkeypatch.setattr(worker_module, "sweep_overdue", signalled_sweep)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    connection = Redis.from_url(redis_url)
    try:
        worker = MediaWorker(
            [media_queue(connection, settings)], connection=connection, settings=settings
        )
        signal.signal(signal.SIGTERM, worker.request_stop)  # as RQ's work() installs it
        with pytest.raises(StopRequested):
            worker.run_maintenance_tasks()
        assert passes == ["sweep", "sweep ended"]
        assert worker.stop_asked

        passes.clear()
        signals.append(2)
        worker = MediaWorker(
            [media_queue(connection, settings)], connection=connection, settings=settings
        )
        signal.signal(signal.SIGTERM, worker.request_stop)
        with pytest.raises(SystemExit):
            worker.run_maintenance_tasks()
        assert passes == ["sweep"]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        connection.close()
