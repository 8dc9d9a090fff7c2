"""Load: many concurrent users through the Telegram emulator against the real processes.

    .venv/bin/python bench/load.py [--users 200] [--workers 1,2,4] [--rounds 2]

For each worker count it starts the whole stack as processes — ``python -m bot``,
``python -m web``, N × ``python -m workers``, the Telegram and YooKassa emulators
(``tests/chaos/stack.py``) — on a fresh database of the PostgreSQL server at
BENCH_POSTGRES_URL (default: the local one) and a Redis server of its own. Every user opens
⬆️ Улучшить; then, ``--rounds`` times, all users send a photo at the same moment and the
script waits until every one got its result.

Measured from the moment the user's photo is an update waiting for the bot (the emulator
answered the upload) to the moment the Bot API received the bot's call (its call log):
  * command → "⏳ В очереди" acknowledgement (the bot charged, recorded and queued);
  * command → result photo (queued, run by a forking worker, delivered);
and the peak resident memory (VmHWM) of the bot, the web server and each worker process,
plus the largest RSS any work-horse reached (sampled every 0.2 s: horses live for one job).
Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alembic import command  # noqa: E402
from billing.audit import audit  # noqa: E402
from tests.chaos.stack import (  # noqa: E402
    ChaosStack,
    ChaosUser,
    OwnRedis,
    Scene,
    children_of,
    peak_rss_kib,
    rss_kib,
    small_photo,
)
from tests.conftest import alembic_config  # noqa: E402

ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
DB = "medialab_load"
SETTINGS: dict[str, object] = {
    "LOG_LEVEL": "WARNING",
    "FREE_OPERATIONS_COUNT": 1000,  # every operation free: the money path is the same
    "JOB_RETRIES": 2,
    "SWEEP_INTERVAL_SECONDS": 5,
    "JOB_TIMEOUT_SECONDS": 180,
    "JOB_DEADLINE_MARGIN_SECONDS": 150,
    "OPERATION_DEADLINE_SECONDS": 570,  # queue wait: 900 s in all with the two above
}


def fresh_database() -> str:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB}"')
    url = ADMIN.rsplit("/", 1)[0] + f"/{DB}"
    command.upgrade(alembic_config(url), "head")
    return url


def drop_database() -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


@dataclass
class Memory:
    """Peak RSS per role, in KiB."""

    peaks: dict[str, int] = field(default_factory=dict)

    def see(self, role: str, kib: int | None) -> None:
        if kib is not None:
            self.peaks[role] = max(self.peaks.get(role, 0), kib)


async def sample_memory(stack: ChaosStack, memory: Memory, stop: asyncio.Event) -> None:
    while not stop.is_set():
        for worker in stack.workers:
            for horse in children_of(worker.pid):
                try:
                    if os.getpgid(horse) != horse:  # RQ gives each work-horse its own group
                        continue
                except ProcessLookupError:  # it just finished its job
                    continue
                memory.see("work-horse (largest seen)", rss_kib(horse))
        await asyncio.sleep(0.2)


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU time of a process (with ``children``: plus its reaped children,
    e.g. a worker's work-horses)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
    except OSError:
        return 0.0
    fields = stat[stat.rfind(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(stack: ChaosStack) -> dict[str, float]:
    assert stack.bot is not None and stack.web is not None
    snap = {"bot": cpu_seconds(stack.bot.pid), "web": cpu_seconds(stack.web.pid)}
    snap["workers"] = sum(cpu_seconds(w.pid, children=True) for w in stack.workers)
    if stack.tg_proc is not None:
        snap["telegram emulator"] = cpu_seconds(stack.tg_proc.pid)
    return snap


def final_peaks(stack: ChaosStack, memory: Memory) -> None:
    assert stack.bot is not None and stack.web is not None
    memory.see("bot", peak_rss_kib(stack.bot.pid))
    memory.see("web", peak_rss_kib(stack.web.pid))
    for worker in stack.workers:
        memory.see("worker (each, max)", peak_rss_kib(worker.pid))


async def open_modes(users: list[ChaosUser], concurrency: int = 50) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(user: ChaosUser) -> None:
        async with gate:
            await user.open_upscale(timeout=120)

    await asyncio.gather(*(one(u) for u in users))


async def one_round(
    scene: Scene,
    users: list[ChaosUser],
    photo: bytes,
    timeout: float,  # noqa: ASYNC109
) -> tuple[list[float], list[float], float]:
    """All users send a photo at once; (acks, results, wall seconds until the last one)."""
    since = await scene.tg.last_call_seq()
    sent: dict[int, float] = {}

    before: dict[int, float] = {}

    async def send(user: ChaosUser) -> None:
        before[user.chat_id] = time.time()
        await user.tg.send_photo(photo)
        # The clock starts when the update exists (the emulator answered the upload): its
        # own work on 200 simultaneous uploads is the test rig's, not the bot's.
        sent[user.chat_id] = time.time()

    started = time.time()
    await asyncio.gather(*(send(u) for u in users))
    acks: dict[int, float] = {}
    results: dict[int, float] = {}
    deadline = time.monotonic() + timeout
    while len(results) < len(users):
        # The result replaces the "queued" message (editMessageMedia), or is a new photo.
        calls = await scene.tg.calls(["sendMessage", "sendPhoto", "editMessageMedia"], since=since)
        for call in calls:
            since = max(since, call["seq"])
            chat = call.get("chat_id")
            if chat is None:
                continue
            chat = int(chat)
            if chat not in sent or call["time"] < before[chat]:
                continue
            text = str(call["params"].get("text") or "")
            took = max(0.0, call["time"] - sent[chat])
            if call["method"] == "sendMessage" and "В очереди" in text and chat not in acks:
                acks[chat] = took
            is_result = call["method"] in ("sendPhoto", "editMessageMedia")
            if is_result and call.get("ok", True) and chat not in results:
                results[chat] = took
        if time.monotonic() > deadline:
            print(f"  ! {len(users) - len(results)} results missing after {timeout:.0f} s")
            break
        settled = len(acks) == len(users) or time.time() - started > 120
        if settled and len(results) < len(users) and not await scene.active_operations():
            # Nothing left to run: the missing results are operations that failed.
            await asyncio.sleep(2)  # a last result may still be on its way
            if not await scene.active_operations():
                missing = len(users) - len(results)
                print(f"  ! {missing} users got no result (see the operations' statuses)")
                break
        await asyncio.sleep(0.3)
    return list(acks.values()), list(results.values()), time.time() - started


async def run(workers: int, users: int, rounds: int, tmp: Path, photo: bytes) -> dict:
    url = await asyncio.to_thread(fresh_database)
    redis_server = OwnRedis(tmp / f"redis-{workers}").start()
    stack = ChaosStack(
        tmp / f"stack-{workers}",
        database_url=url,
        redis_server=redis_server,
        settings=SETTINGS,
        workers=workers,
    )
    t0 = time.monotonic()
    stack.start()
    startup = time.monotonic() - t0
    scene = Scene(stack)
    memory = Memory()
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_memory(stack, memory, stop))
    try:
        crowd = [scene.user() for _ in range(users)]
        await open_modes(crowd)
        acks: list[float] = []
        results: list[float] = []
        walls: list[float] = []
        cpu: dict[str, float] = {}
        for n in range(rounds):
            before = cpu_snapshot(stack)
            a, r, wall = await one_round(scene, crowd, photo, timeout=900)
            after = cpu_snapshot(stack)
            for role in after:
                cpu[role] = cpu.get(role, 0.0) + after[role] - before.get(role, 0.0)
            print(f"  round {n + 1}: {len(r)} results in {wall:.1f} s", flush=True)
            acks += a
            results += r
            walls.append(wall)
        await scene.drain(timeout=300)
        final_peaks(stack, memory)
        ops = await scene.operations()
        async with scene.sessionmaker() as session:
            problems = await audit(session)
    finally:
        stop.set()
        await sampler
        await scene.close()
        stack.stop()
        redis_server.kill()
        drop_database()
    statuses: dict[str, int] = {}
    for op in ops:
        statuses[op.status] = statuses.get(op.status, 0) + 1
    return {
        "workers": workers,
        "startup": startup,
        "acks": acks,
        "results": results,
        "throughput": len(results) / sum(walls) if walls else 0.0,
        "statuses": statuses,
        "audit": problems,
        "memory": memory.peaks,
        "cpu": cpu,
        "operations": users * rounds,
    }


def report(row: dict, users: int) -> None:
    a, r = row["acks"], row["results"]
    print(
        f"workers={row['workers']}: {users} users, {len(r)} results "
        f"(startup {row['startup']:.1f} s, operations {row['statuses']}, "
        f"audit {'clean' if not row['audit'] else row['audit'][:3]})"
    )
    print(
        f"  command → 'В очереди':  p50 {pct(a, 50) * 1000:7.0f} ms   "
        f"p99 {pct(a, 99) * 1000:7.0f} ms   (n={len(a)})"
    )
    print(
        f"  command → result:       p50 {pct(r, 50):7.2f} s    p99 {pct(r, 99):7.2f} s    "
        f"mean {statistics.fmean(r) if r else float('nan'):.2f} s; "
        f"{row['throughput']:.2f} results/s"
    )
    mem = ", ".join(f"{k} {v / 1024:.0f} MiB" for k, v in sorted(row["memory"].items()))
    print(f"  peak RSS: {mem}")
    n = max(1, row["operations"])
    cpu = ", ".join(
        f"{k} {v:.1f} s ({v / n * 1000:.0f} ms/operation)" for k, v in row["cpu"].items()
    )
    print(f"  CPU during the rounds: {cpu}")


async def main_async(args: argparse.Namespace) -> None:
    photo = small_photo(side=args.side)
    print(
        f"load: {args.users} users, {args.rounds} round(s) of one ⬆️ Улучшить each, "
        f"{args.side}px photos, workers {args.workers}; nproc {os.cpu_count()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory(prefix="medialab-load-") as tmp:
        for workers in args.workers:
            row = await run(workers, args.users, args.rounds, Path(tmp), photo)
            report(row, args.users)
            sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument(
        "--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4]
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--side",
        type=int,
        default=512,
        help="the photos' longer side in pixels (the result is twice that)",
    )
    args = parser.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
