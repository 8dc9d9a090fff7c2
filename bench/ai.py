"""AI operations at once: N generations against the fal emulator, a model time of S seconds,
two workers; the job submits and ends, the signed webhook brings the result.

    .venv/bin/python bench/ai.py [--ops 200] [--model-seconds 5] [--workers 2]

Starts, each a process of its own: a Redis server, the Telegram emulator, the fal emulator
(``python -m sandbox.fal --model-seconds S``: every request takes S s, then its webhook is
posted, signed), ``python -m web`` (``POST /fal/webhook``) and the workers (``python -m
workers``, forking MediaWorkers with RQ's scheduler), on a PostgreSQL database of its own.
Charges N generate operations as the bot does (the "queued" message, the charge, the job id),
enqueues them all at once, and prints:

- every one delivered (operation succeeded, a photo in its chat), and the wall time;
- the worker processes (main, scheduler, work-horses) sampled every 0.1 s: their peak
  number and peak total RSS;
- operations in flight per worker process: the most operations at once that were submitted
  and waiting on the model, over the worker processes' count — and how long the longest
  submitting job ran (a job that waited on the model would run S s);
- from the webhook (fal emulator's send time) to the photo in the chat (the operation's
  ``delivered_at``): p50 / p99;
- Bot API messages sent or edited per operation (from the Telegram emulator's log).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from redis import Redis
from rq.job import Job

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alembic.config import Config  # noqa: E402

from alembic import command  # noqa: E402
from billing import accounts, operations  # noqa: E402
from billing.db import make_engine, make_sessionmaker  # noqa: E402
from billing.settings import Settings  # noqa: E402
from jobqueue.queue import enqueue_operation, job_id_for, media_queue  # noqa: E402
from sandbox._common import free_port  # noqa: E402
from sandbox.telegram_client import TelegramEmulatorClient  # noqa: E402
from tg.factory import SANDBOX_TOKEN, make_bot  # noqa: E402

ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
DB = os.environ.get("BENCH_AI_DB", "medialab_bench_ai")  # a name of its own per run
QUEUE = "bench-ai"
KEY = "bench-fal-key"
WAIT = 600.0
MESSAGE_METHODS = {  # every method that sends, edits or deletes a message
    "sendMessage",
    "sendPhoto",
    "sendDocument",
    "sendMediaGroup",
    "editMessageText",
    "editMessageCaption",
    "editMessageMedia",
    "editMessageReplyMarkup",
    "deleteMessage",
    "deleteMessages",
}
GOAL = 3  # issue 15: at most 3 message sends/edits per operation on the common path


def db_url() -> str:
    return f"{ADMIN.rsplit('/', 1)[0]}/{DB}"


def prepare_database() -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB}"')
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.attributes["url"] = db_url()
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=open(log, "wb"),  # noqa: SIM115 - lives as long as the process
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for(check: Any, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def _pings(url: str) -> bool:
    try:
        return bool(Redis.from_url(url).ping())
    except Exception:  # noqa: BLE001 - not up yet
        return False


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - local
            return response.status < 500
    except Exception:  # noqa: BLE001 - not up yet
        return False


# --- the worker processes ---------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found.extend(int(x) for x in f.read().split())
    except OSError:
        pass
    return found


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(_children(p))
    return out


def _kb(path: str, field: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _rss_kb(pid: int) -> int:
    return _kb(f"/proc/{pid}/status", "VmRSS:")


def _pss_kb(pid: int) -> int:
    """The process's share of its pages (a forked horse shares most of its parent's)."""
    return _kb(f"/proc/{pid}/smaps_rollup", "Pss:")


class Sampler(threading.Thread):
    """Every 0.1 s: the worker processes (and their RSS); every 0.25 s: the operations
    submitted and waiting on the model."""

    def __init__(self, roots: list[int], dsn: str) -> None:
        super().__init__(daemon=True)
        self.roots = roots
        self.dsn = dsn
        self.stop = threading.Event()
        self.peak_procs = 0
        self.peak_rss_kb = 0
        self.peak_pss_kb = 0
        self.peak_waiting = 0
        self.rss_at_peak: list[int] = []

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            tick = 0
            while not self.stop.is_set():
                pids = [p for root in self.roots for p in _tree(root)]
                rss = [_rss_kb(p) for p in pids]
                if len(pids) > self.peak_procs:
                    self.peak_procs, self.rss_at_peak = len(pids), rss
                self.peak_rss_kb = max(self.peak_rss_kb, sum(rss))
                self.peak_pss_kb = max(self.peak_pss_kb, sum(_pss_kb(p) for p in pids))
                if tick % 3 == 0:
                    row = conn.execute(
                        "SELECT count(*) FROM operations WHERE status = 'running' "
                        "AND model_request_id IS NOT NULL AND model_result IS NULL"
                    ).fetchone()
                    self.peak_waiting = max(self.peak_waiting, row[0] if row else 0)
                tick += 1
                time.sleep(0.08)


# --- the run ----------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def charge_generate(
    sessionmaker: Any, settings: Settings, bot: Any, user: Any, text: str
) -> tuple[int, str]:
    """A user of the emulator with money, charged for a generation as the bot charges it
    ("queued" message, charge, job id recorded): (operation id, key token)."""
    await user.send_text("/start")
    status = await bot.send_message(user.chat_id, "⏳ В очереди…")
    async with sessionmaker() as session:
        account, _ = await accounts.get_or_create_user(
            session, telegram_id=user.user_id, free_operations=0
        )
        await accounts.adjust(session, user_id=account.id, amount=10_000, reason="bench top-up")
        op = await operations.charge(
            session,
            settings,
            user_id=account.id,
            op_type="generate",
            request_key=f"{user.chat_id}:{status.message_id}",
            chat_id=user.chat_id,
            input_ref={"file_ids": [], "text": text},
        )
        await operations.set_operation_job(
            session,
            operation_id=op.operation_id,
            job_id=job_id_for(op.operation_id, op.key_token),
            status_message_id=status.message_id,
        )
        await session.commit()
    return op.operation_id, op.key_token


async def run(
    args: argparse.Namespace, settings: Settings, urls: dict[str, str], roots: list[int]
):
    engine = make_engine(settings.DATABASE_URL, pool_size=8)
    sessionmaker = make_sessionmaker(engine)
    redis = Redis.from_url(settings.REDIS_URL)
    queue = media_queue(redis, settings)
    bot = make_bot(settings)
    charged: list[tuple[int, str, int]] = []  # (operation id, key token, chat id)
    async with TelegramEmulatorClient(urls["telegram"], token=SANDBOX_TOKEN) as tg:
        users = [tg.user(700_000 + i, first_name="Bench") for i in range(args.ops)]
        sem = asyncio.Semaphore(20)

        async def prepare(user: Any) -> None:
            async with sem:
                operation_id, key_token = await charge_generate(
                    sessionmaker, settings, bot, user, f"кот номер {user.user_id}"
                )
                charged.append((operation_id, key_token, user.chat_id))

        before_queued = max((c["seq"] for c in await tg.calls()), default=0)
        await asyncio.gather(*(prepare(u) for u in users))
        since = max((c["seq"] for c in await tg.calls()), default=0)

        sampler = Sampler(roots, db_url())
        sampler.start()
        started = time.monotonic()
        for operation_id, token, _ in charged:
            # As the bot queues an operation on a hosted model (bot.billed: hosted=...).
            enqueue_operation(queue, settings, operation_id, token, hosted=True)
        enqueued = time.monotonic() - started

        async def all_done() -> list[Any]:
            async with engine.connect() as conn:
                from sqlalchemy import text

                rows = (
                    await conn.execute(
                        text("SELECT id, status, model_request_id, delivered_at FROM operations")
                    )
                ).all()
            return rows

        deadline = time.monotonic() + WAIT
        while True:
            rows = await all_done()
            if all(r.status in ("succeeded", "refunded", "failed") for r in rows):
                break
            if time.monotonic() > deadline:
                raise SystemExit("timed out: not every operation finished")
            await asyncio.sleep(0.2)
        wall = time.monotonic() - started
        sampler.stop.set()
        sampler.join()

        succeeded = [r for r in rows if r.status == "succeeded"]
        queued_calls = await tg.calls(since=before_queued)
        calls = [c for c in queued_calls if c["seq"] > since]
        photos = {
            c.get("chat_id")
            for c in calls
            if c["method"] in ("editMessageMedia", "sendPhoto") and c.get("ok")
        }
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{urls['fal']}/_emu/webhooks") as response:
                webhooks = (await response.json())["webhooks"]
    sent_at = {w["request_id"]: w["sent_at"] for w in webhooks if w.get("status") == 200}
    latency = [
        r.delivered_at.timestamp() - sent_at[r.model_request_id]
        for r in succeeded
        if r.model_request_id in sent_at and r.delivered_at is not None
    ]
    submit_seconds = []
    for operation_id, token, _ in charged:
        job = Job.fetch(job_id_for(operation_id, token), connection=redis)
        if job.started_at and job.ended_at:
            submit_seconds.append((job.ended_at - job.started_at).total_seconds())
    # Counted per chat (one operation each) from the emulator's log, the "queued" message
    # included (sent before the clock started, as the bot sends it); a call Telegram refused
    # (flood control) sent nothing and is counted apart.
    per_chat: dict[Any, int] = {chat_id: 0 for _, _, chat_id in charged}
    refused = 0
    for c in queued_calls:
        if c["method"] in MESSAGE_METHODS and c.get("chat_id") in per_chat:
            if c.get("ok"):
                per_chat[c["chat_id"]] += 1
            else:
                refused += 1
    other = [c for c in calls if c["method"] not in MESSAGE_METHODS]
    by_kind: dict[str, int] = {}
    for c in queued_calls:
        if c.get("ok"):
            by_kind[c["method"]] = by_kind.get(c["method"], 0) + 1
    counts = list(per_chat.values())
    messages = sum(counts) / len(counts)

    print(
        f"{args.ops} generate operations, model time {args.model_seconds:g} s, "
        f"{args.workers} workers, python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, load average at the end {os.getloadavg()[0]:.1f}"
    )
    print(
        f"  delivered: {len(succeeded)}/{len(rows)} succeeded, photos in "
        f"{len(photos)} chats; enqueued in {enqueued:.2f} s; all done in {wall:.1f} s"
    )
    print(
        f"  worker processes: peak {sampler.peak_procs} (mains, schedulers, horses); RSS "
        f"at that peak {sum(sampler.rss_at_peak) / 1024:.0f} MB "
        f"({', '.join(f'{kb / 1024:.0f}' for kb in sorted(sampler.rss_at_peak))} MB); "
        f"peak total {sampler.peak_rss_kb / 1024:.0f} MB RSS, "
        f"{sampler.peak_pss_kb / 1024:.0f} MB PSS (shared pages counted once)"
    )
    print(
        f"  in flight: peak {sampler.peak_waiting} operations waiting on the model at once = "
        f"{sampler.peak_waiting / args.workers:.0f} per worker; the longest submitting job "
        f"ran {max(submit_seconds):.2f} s (median {statistics.median(submit_seconds):.2f} s)"
    )
    if latency:
        print(
            f"  webhook -> photo in chat: p50 {pct(latency, 0.5) * 1000:.0f} ms, "
            f"p99 {pct(latency, 0.99) * 1000:.0f} ms (n={len(latency)})"
        )
    print(
        f"  Bot API messages sent/edited per operation (emulator's log): mean {messages:.2f}, "
        f"max {max(counts)} (goal <= {GOAL}: {'met' if max(counts) <= GOAL else 'NOT met'}); "
        f"{refused} refused by flood control; + {len(other) / len(charged):.2f} other calls "
        "(getFile, chat actions) per operation; "
        + ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items()))
    )
    await bot.session.close()
    await engine.dispose()
    redis.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--model-seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    prepare_database()
    logs = Path(tempfile.mkdtemp(prefix="bench-ai-"))
    redis_port, tg_port, fal_port, web_port = (free_port() for _ in range(4))
    redis_server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(logs),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    wait_for(lambda: _pings(redis_url), "redis-server")
    urls = {
        "telegram": f"http://127.0.0.1:{tg_port}",
        "fal": f"http://127.0.0.1:{fal_port}",
        "web": f"http://127.0.0.1:{web_port}",
    }
    base_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BOT_", "YOOKASSA_", "FAL_", "JOB_", "RQ_", "WORKER_", "WEB_"))
    }
    values = {
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": db_url(),
        "REDIS_URL": redis_url,
        "TELEGRAM_API_URL": urls["telegram"],
        "RQ_QUEUE": QUEUE,
        "JOB_RETRIES": "0",
        "FREE_OPERATIONS_COUNT": "0",
        "FAL_KEY": KEY,
        "FAL_API_URL": urls["fal"],
        "FAL_JWKS_URL": f"{urls['fal']}/.well-known/jwks.json",
        "WEB_PUBLIC_URL": urls["web"],
        "WEB_HOST": "127.0.0.1",
        "WEB_PORT": str(web_port),
        "FAL_POLL_AFTER_SECONDS": "300",
    }
    settings = Settings(_env_file=None, **values)  # type: ignore[arg-type, call-arg]
    env = {**base_env, **values}
    procs = [
        start(["-m", "sandbox.telegram", "--port", str(tg_port)], base_env, logs / "tg.log"),
        start(
            [
                "-m",
                "sandbox.fal",
                "--port",
                str(fal_port),
                "--key",
                KEY,
                "--polls",
                "1",
                "--model-seconds",
                str(args.model_seconds),
            ],
            base_env,
            logs / "fal.log",
        ),
        start(["-m", "web"], env, logs / "web.log"),
    ]
    workers = [
        start(["-m", "workers", "--name", f"bench{i}"], env, logs / f"worker{i}.log")
        for i in range(args.workers)
    ]
    try:
        redis = Redis.from_url(redis_url)
        for i in range(args.workers):
            wait_for(lambda i=i: redis.exists(f"rq:worker:bench{i}"), f"worker {i}")
        wait_for(lambda: _answers(f"{urls['web']}/healthz"), "web")
        wait_for(lambda: _answers(f"{urls['fal']}/.well-known/jwks.json"), "fal emulator")
        print(f"logs in {logs}")
        asyncio.run(run(args, settings, urls, [w.pid for w in workers]))
    finally:
        for proc in [*workers, *procs]:
            proc.terminate()
        for proc in [*workers, *procs]:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        redis_server.terminate()
        redis_server.wait(30)


if __name__ == "__main__":
    main()
