"""Found by the worker-kill scenario: a SIGTERM that lands while the sweeper runs (RQ's
handler raises ``StopRequested`` from wherever the worker is) was swallowed by the sweeper's
``except Exception``, so the worker ignored the warm shutdown and ran on until SIGKILL —
in production, ``docker stop`` would then kill it in the middle of a job."""

from __future__ import annotations

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
