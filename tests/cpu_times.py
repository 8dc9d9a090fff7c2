"""CPU seconds per test (``-p tests.cpu_times``, CPU_TIMES=<file>): for tuning the tiers.

The machine the tests run on is often shared, so wall time says little; this records each
test's CPU (this process's and its children's, setup + call + teardown) and each test
process's collection cost, one JSON line each, appended to $CPU_TIMES."""

from __future__ import annotations

import json
import os
import resource
import time

import pytest

_OUT = os.environ.get("CPU_TIMES", "cpu_times.jsonl")


def _cpu() -> tuple[float, float]:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time(), children.ru_utime + children.ru_stime


def _write(record: dict[str, object]) -> None:
    with open(_OUT, "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")


def pytest_collection_finish(session: pytest.Session) -> None:
    own, children = _cpu()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    _write(
        {
            "collect": worker,
            "cpu": round(own, 3),
            "children": round(children, 3),
            "ended": round(time.time(), 3),
        }
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):  # type: ignore[no-untyped-def]
    own, children = _cpu()
    wall = time.monotonic()
    yield
    own2, children2 = _cpu()
    _write(
        {
            "test": item.nodeid,
            "cpu": round(own2 - own, 4),
            "children": round(children2 - children, 4),
            "wall": round(time.monotonic() - wall, 4),
            "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
            "ended": round(time.time(), 3),  # when: to see how the workers' loads end
        }
    )


def pytest_sessionfinish(session: pytest.Session) -> None:
    own, children = _cpu()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    _write({"finish": worker, "cpu": round(own, 3), "children": round(children, 3)})
