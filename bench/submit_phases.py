"""Where a submitting job's time goes: the fork of a work-horse, RQ's bookkeeping, and the
job's own steps (its resources, the claim, the "processing" edit, the HTTP submit, the
record, the poll's scheduling), on the same machine in the same run.

    .venv/bin/python bench/submit_phases.py [--ops 60]

Starts a Redis server, the Telegram and fal emulators (processes of their own) on a
PostgreSQL database of its own, charges N generate operations as the bot does and:

1. forks N bare horses from this process (imports preloaded, as ``python -m workers``
   does): the fork + exit + wait alone;
2. runs N no-op RQ jobs through a forking ``Worker`` and through the in-process
   ``SimpleWorker`` (burst): RQ's bookkeeping per job, with and without the fork;
3. runs N operations' submitting jobs (``run_operation``) in this process, one after
   another, with each step timed (the functions wrapped here, for this measurement only):
   each in a fresh event loop with new connections (as a work-horse does), then N more on
   the kept loop with kept connections (``runtime.run_job`` in the worker's own process).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from redis import Redis
from rq import Queue, SimpleWorker, Worker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bench.ai as stack  # noqa: E402
from billing.db import make_engine, make_sessionmaker  # noqa: E402
from billing.settings import Settings  # noqa: E402
from sandbox.telegram_client import TelegramEmulatorClient  # noqa: E402
from tg.factory import SANDBOX_TOKEN, make_bot  # noqa: E402

stack.DB = "medialab_bench_phases"
TIMES: dict[str, list[float]] = defaultdict(list)


def timed(owner: Any, name: str, label: str) -> None:
    """Wrap ``owner.name`` (sync or async) so each call's time lands in TIMES[label]."""
    original = getattr(owner, name)
    if asyncio.iscoroutinefunction(original):

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                TIMES[label].append(time.perf_counter() - t0)

    else:

        def wrapper(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                TIMES[label].append(time.perf_counter() - t0)

    setattr(owner, name, wrapper)


def per(label: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"  {label:<44} median {statistics.median(ms):7.1f} ms  mean {statistics.mean(ms):7.1f} ms"
    )


def forks(n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        out.append(time.perf_counter() - t0)
    return out


def rq_noops(redis: Redis, worker_class: type, n: int) -> float:
    queue = Queue(f"phases-{worker_class.__name__}", connection=redis)
    for _ in range(n):
        queue.enqueue("os.getpid")
    worker = worker_class([queue], connection=redis)
    t0 = time.perf_counter()
    worker.work(burst=True, logging_level="WARNING")
    return (time.perf_counter() - t0) / n


async def charge(settings: Settings, urls: dict[str, str], n: int) -> list[tuple[int, str]]:
    engine = make_engine(settings.DATABASE_URL, pool_size=4)
    sessionmaker = make_sessionmaker(engine)
    bot = make_bot(settings)
    charged = []
    async with TelegramEmulatorClient(urls["telegram"], token=SANDBOX_TOKEN) as tg:
        for i in range(n):
            user = tg.user(800_000 + i, first_name="Phases")
            charged.append(
                await stack.charge_generate(sessionmaker, settings, bot, user, f"кот {i}")
            )
    await bot.session.close()
    await engine.dispose()
    return charged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=60)
    args = parser.parse_args()

    stack.prepare_database()
    logs = Path(tempfile.mkdtemp(prefix="bench-phases-"))
    redis_port, tg_port, fal_port = (stack.free_port() for _ in range(3))
    redis_server = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    stack.wait_for(lambda: stack._pings(redis_url), "redis-server")
    urls = {"telegram": f"http://127.0.0.1:{tg_port}", "fal": f"http://127.0.0.1:{fal_port}"}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAL_", "BOT_"))}
    procs = [
        stack.start(["-m", "sandbox.telegram", "--port", str(tg_port)], env, logs / "tg.log"),
        stack.start(
            ["-m", "sandbox.fal", "--port", str(fal_port), "--key", stack.KEY],
            env,
            logs / "fal.log",
        ),
    ]
    try:
        stack.wait_for(lambda: stack._answers(f"{urls['fal']}/.well-known/jwks.json"), "fal")
        stack.wait_for(
            lambda: stack._answers(f"{urls['telegram']}/bot{SANDBOX_TOKEN}/getMe"), "telegram"
        )
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            ENVIRONMENT="test",
            LOG_LEVEL="WARNING",
            DATABASE_URL=stack.db_url(),
            REDIS_URL=redis_url,
            TELEGRAM_API_URL=urls["telegram"],
            RQ_QUEUE="phases",
            JOB_RETRIES=0,
            FREE_OPERATIONS_COUNT=0,
            FAL_KEY=stack.KEY,
            FAL_API_URL=urls["fal"],
            WEB_PUBLIC_URL="http://127.0.0.1:9/",  # nobody: the webhooks are not measured
        )
        from workers import runtime

        runtime.configure(settings)
        import workers.jobs  # noqa: F401 - preloaded, as python -m workers does
        from workers import ai, run

        runtime.warm_up(settings)
        redis = Redis.from_url(redis_url)
        charged = asyncio.run(charge(settings, urls, 2 * args.ops))

        fork_times = forks(args.ops)
        forking = rq_noops(redis, Worker, args.ops)
        simple = rq_noops(redis, SimpleWorker, args.ops)

        from billing import model_calls
        from billing import operations as billing_operations
        from imaging import fal

        steps: list[tuple[Any, str, str]] = [
            (runtime, "take_engine", "resources: the engine's pool (per job)"),
            (runtime, "make_job_bot", "resources: a Bot for the job"),
            (billing_operations, "claim_operation", "claim (one statement)"),
            (run, "_show_processing", "the 'processing' edit (Telegram)"),
            (fal.FalClient, "submit", "HTTP submit to the fal queue"),
            (model_calls, "record_request", "record the request id"),
            (ai, "schedule_poll", "schedule the poll (RQ scheduler, Redis)"),
            (ai, "submit", "ai.submit in all"),
        ]
        for owner, name, label in steps:
            timed(owner, name, label)
        whole: list[float] = []
        for operation_id, token in charged[: args.ops]:
            t0 = time.perf_counter()
            outcome = asyncio.run(run.run_operation(operation_id, [], token))
            whole.append(time.perf_counter() - t0)
            assert outcome["outcome"] == "submitted", outcome
        fresh = {label: list(values) for label, values in TIMES.items()}
        TIMES.clear()
        # The same jobs as the worker now runs them in its own process: on its kept loop.
        kept: list[float] = []
        with runtime.in_process():
            for operation_id, token in charged[args.ops :]:
                t0 = time.perf_counter()
                outcome = runtime.run_job(run.run_operation(operation_id, [], token))
                kept.append(time.perf_counter() - t0)
                assert outcome["outcome"] == "submitted", outcome
        runtime.close_kept()
        load = os.getloadavg()
        print(
            f"{args.ops} submitting jobs, python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
            f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
        )
        print(per("fork + exit + wait of a bare horse", fork_times))
        print(f"  {'RQ no-op job, forking Worker':<44} mean {forking * 1000:7.1f} ms")
        print(f"  {'RQ no-op job, SimpleWorker (in process)':<44} mean {simple * 1000:7.1f} ms")
        print("a fresh event loop and new connections per job (as in a work-horse):")
        print(per("run_operation of a generate, in process", whole))
        for _, _, label in steps:
            print(per(label, fresh[label]))
        print("on the kept loop with its kept connections (the worker's own process now):")
        print(per("run_operation of a generate, in process", kept))
        for _, _, label in steps:
            if TIMES.get(label):
                print(per(label, TIMES[label]))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)
        redis_server.terminate()
        redis_server.wait(30)


if __name__ == "__main__":
    main()
