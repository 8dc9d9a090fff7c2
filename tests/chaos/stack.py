"""The whole Media Lab as separate processes, for the chaos scenarios and bench/load.py.

``ChaosStack`` runs the real entry points — ``python -m bot`` (long polling),
``python -m workers`` (one or more forking RQ workers), ``python -m web`` — and the Telegram
and YooKassa emulators (``python -m tests.chaos.emulators``) against a PostgreSQL database
and a Redis server of its own (:class:`OwnRedis` on a free port in a temp dir; with
:class:`CrashablePostgres` also a PostgreSQL cluster of its own), so a scenario may kill and
restart any of them. A test drives it through a :class:`Scene` (emulator clients, an engine,
the users, the kill loop); :class:`ChaosUser` is one emulated user with a script; the judge
afterwards is ``tests/chaos/books.py``.

Everything here only ever signals processes this module started (by pid / process group).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import redis
from PIL import Image
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from alembic import command
from billing import accounts
from billing.db import make_engine, make_sessionmaker
from billing.models import Operation, OperationStatus
from billing.settings import Settings
from jobqueue.queue import parse_job_id
from sandbox._common import free_port
from sandbox.telegram_client import Message, TelegramEmulatorClient, TelegramUser
from sandbox.yookassa_client import YooKassaEmulatorClient
from tests.conftest import alembic_config
from tests.web.own_postgres import OwnPostgres
from tests.web.own_postgres import _bin as _pg_bin
from texts.i18n import t

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
TOKEN = "770077:chaos-stack-token_for_the_emulator"
SHOP_ID = "707070"
SECRET_KEY = "test_chaos_secret_key_for_the_emulator"
WEBHOOK_PATH = "/yookassa/webhook"
FINAL = (OperationStatus.SUCCEEDED, OperationStatus.REFUNDED, OperationStatus.FAILED)
ACTIVE = (OperationStatus.QUEUED, OperationStatus.RUNNING)
TABLES = (
    "payment_refunds",
    "payment_notices",
    "ledger_entries",
    "operations",
    "user_plans",
    "payments",
    "users",
)
# Children get SIGKILL when the test process dies (a killed or timed-out pytest leaves no
# bot, worker or Redis behind). Tied to the thread that starts them: start them from the
# event loop's thread, never from a worker thread.
DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []
STARTUP = 240.0  # seconds: aiogram's types take seconds of CPU to import on a busy machine

# Short job settings: abandoned jobs are swept within seconds, not minutes.
FAST_JOBS: dict[str, object] = {
    "JOB_TIMEOUT_SECONDS": 20,
    "JOB_DEADLINE_MARGIN_SECONDS": 10,
    "OPERATION_DEADLINE_SECONDS": 60,  # queue wait: 90 s in all
    "SWEEP_INTERVAL_SECONDS": 1,
    "JOB_RETRIES": 1,
}


def small_photo(name: str = "astronaut.jpg", side: int = 256) -> bytes:
    """A fixture photo scaled down: upscaling it is cheap, so the stack is what is tested."""
    with Image.open(FIXTURES / name) as img:
        img = img.convert("RGB")
        img.thumbnail((side, side))
        out = io.BytesIO()
        img.save(out, "JPEG", quality=90)
        return out.getvalue()


# ---------------------------------------------------------------------------- processes


def children_of(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        # "pid (comm) state ppid ..." — comm may contain spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry))
    return found


def peak_rss_kib(pid: int) -> int | None:
    """VmHWM (the peak resident set) of a live process, in KiB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Proc:
    """One process we started, in a session (process group) of its own."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.expected_dead = False

    def start(self) -> Proc:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== {time.strftime('%H:%M:%S')} {' '.join(self.argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [*DIE_WITH_PARENT, *self.argv],
                cwd=self.log_path.parent,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.expected_dead = False
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the process and its group (not forks that made groups of their own)."""
        self.expected_dead = True
        self.signal_group(signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)

    def stop(self, grace: float = 20.0) -> None:
        self.expected_dead = True
        if self.alive():
            self.signal_group(signal.SIGTERM)
            assert self.proc is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
        self.kill()

    def log(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class WorkerProc(Proc):
    """``python -m workers``; RQ forks each work-horse into a process group of its own."""

    def horses(self) -> list[int]:
        if not self.alive():
            return []
        horses = []
        for child in children_of(self.pid):
            with contextlib.suppress(ProcessLookupError):
                if os.getpgid(child) == child:
                    horses.append(child)
        return horses

    def kill_with_horses(self) -> list[int]:
        """The worker dies with whatever it was running (a lost machine, the OOM killer)."""
        horses = self.horses()
        self.kill()
        for pid in horses:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        return horses


class OwnRedis:
    """``redis-server`` on a free port with its data in a temp dir (never the shared one).

    No persistence: a restart loses the queue, the FSM state and every lock, the worst case
    for the code around it.
    """

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30.0) -> OwnRedis:  # noqa: ASYNC109
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        log = open(self.dir / "redis.log", "ab")  # noqa: SIM115 - kept by the child
        self.proc = subprocess.Popen(
            [
                *DIE_WITH_PARENT,
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--maxclients",
                "2000",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on {self.port}")
            time.sleep(0.05)
        return self

    def answers(self) -> bool:
        try:
            client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except (redis.RedisError, OSError):
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def restart(self) -> None:
        self.kill()
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)


class CrashablePostgres(OwnPostgres):
    """A PostgreSQL cluster of the test run's own (initdb + pg_ctl on a free port)."""

    def crash(self) -> None:
        """``pg_ctl stop -m immediate``: no clean shutdown, crash recovery on the next start
        (what a killed server or a lost machine does)."""
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def database(self, name: str) -> str:
        """A new database in this cluster, migrated to head; its URL."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        url = self.url.rsplit("/", 1)[0] + f"/{name}"
        command.upgrade(alembic_config(url), "head")
        return url


# -------------------------------------------------------------------------------- stack


def _base_env() -> dict[str, str]:
    drop = (
        "BOT_",
        "YOOKASSA_",
        "FAL_",
        "JOB_",
        "RQ_",
        "WORKER_",
        "TELEGRAM_",
        "DATABASE_",
        "REDIS_",
        "WEB_",
        "THROTTLE_",
        "OPERATION_",
        "SWEEP_",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PYTHONPATH"] = str(ROOT) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Kill:
    """One SIGKILL the chaos loop sent, and the operation it may have interrupted."""

    at: float
    what: str  # "horse" | "worker"
    worker: str
    pids: list[int]
    operation_ids: list[int]


def _get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - our own server
        return json.loads(resp.read())


class ChaosStack:
    """Bot, web, workers and both emulators as processes, on a Redis of its own.

    Synchronous: a stack may outlive one test (the default suite shares one between its
    short scenarios); each test drives it through a :class:`Scene` in its own event loop.
    """

    def __init__(
        self,
        tmp: Path,
        *,
        database_url: str,
        redis_server: OwnRedis,
        settings: dict[str, object] | None = None,
        workers: int = 2,
    ) -> None:
        self.tmp = tmp
        self.database_url = database_url
        self.redis = redis_server
        self.settings = dict(settings or {})
        self.worker_count = workers
        self.tg_port = free_port()
        self.yk_port = free_port()
        self.web_port = free_port()
        self.tg_proc: Proc | None = None
        self.yk_proc: Proc | None = None
        self.bot: Proc | None = None
        self.web: Proc | None = None
        self.workers: list[WorkerProc] = []
        self.retired: list[WorkerProc] = []
        self.kills: list[Kill] = []
        self._worker_seq = 0
        self._user_seq = 0

    # ------------------------------------------------------------------ where
    @property
    def tg_url(self) -> str:
        return f"http://127.0.0.1:{self.tg_port}"

    @property
    def yk_url(self) -> str:
        return f"http://127.0.0.1:{self.yk_port}"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def values(self, **extra: object) -> dict[str, object]:
        values: dict[str, object] = {
            "ENVIRONMENT": "test",
            "LOG_LEVEL": "INFO",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis.url,
            "TELEGRAM_API_URL": self.tg_url,
            "BOT_TOKEN": TOKEN,
            "YOOKASSA_SHOP_ID": SHOP_ID,
            "YOOKASSA_SECRET_KEY": SECRET_KEY,
            "YOOKASSA_API_URL": self.yk_url + "/v3",
            "YOOKASSA_RETURN_URL": self.tg_url + "/chat",
            "YOOKASSA_WEBHOOK_URL": self.web_url + WEBHOOK_PATH,
            "YOOKASSA_TRUSTED_NETWORKS": "127.0.0.1/32",
            "YOOKASSA_TIMEOUT": 5,
            "WEB_HOST": "127.0.0.1",
            "WEB_PORT": self.web_port,
            "RQ_QUEUE": "media-chaos",
            "THROTTLE_BURST": 1000,
            "THROTTLE_RATE_PER_SECOND": 1000,
            "PRICE_PER_OPERATION": "10",
            "FREE_OPERATIONS_COUNT": 2,
        }
        values.update(FAST_JOBS)
        values.update(self.settings)
        values.update(extra)
        return values

    def env(self, **extra: object) -> dict[str, str]:
        env = _base_env()
        env.update({k: str(v) for k, v in self.values(**extra).items()})
        return env

    def app_settings(self) -> Settings:
        """The Settings the stack's processes read from their environment."""
        return Settings(_env_file=None, **self.values())  # type: ignore[arg-type, call-arg]

    # -------------------------------------------------------------- lifecycle
    def _proc(self, name: str, *args: str) -> Proc:
        return Proc(name, [sys.executable, *args], self.env(), self.tmp / "logs" / f"{name}.log")

    def start(self) -> ChaosStack:
        """Start everything; wait until the bot polls, the web answers and every worker is
        registered in RQ. Call from the thread that will outlive the stack (the children
        die with it)."""
        self.tg_proc = self._proc(
            "telegram", "-m", "tests.chaos.emulators", "telegram", "--port", str(self.tg_port)
        ).start()
        self.yk_proc = self._proc(
            "yookassa",
            "-m",
            "tests.chaos.emulators",
            "yookassa",
            "--port",
            str(self.yk_port),
            "--shop-id",
            SHOP_ID,
            "--secret-key",
            SECRET_KEY,
            "--webhook-url",
            self.web_url + WEBHOOK_PATH,
        ).start()
        self.web = self._proc("web", "-m", "web").start()
        self.bot = self._proc("bot", "-m", "bot").start()
        for _ in range(self.worker_count):
            self.start_worker()
        self.wait_ready()
        return self

    def start_worker(self) -> WorkerProc:
        """A new ``python -m workers`` (a new RQ name: a killed worker's name stays
        registered until its key expires)."""
        name = f"chaos-w{self._worker_seq}"
        self._worker_seq += 1
        worker = WorkerProc(
            name,
            [sys.executable, "-m", "workers", "--name", name],
            self.env(),
            self.tmp / "logs" / f"{name}.log",
        )
        worker.start()
        self.workers.append(worker)
        return worker

    def processes(self) -> list[Proc]:
        procs = (self.tg_proc, self.yk_proc, self.bot, self.web, *self.workers)
        return [p for p in procs if p is not None]

    def ready(self) -> tuple[bool, str]:
        self.check_alive()
        try:
            with urllib.request.urlopen(self.web_url + "/healthz", timeout=3) as resp:
                web_ok = resp.status == 200
        except (OSError, ValueError):
            web_ok = False
        try:
            calls = _get_json(
                f"{self.tg_url}/_emu/calls?method=getUpdates&include_get_updates=true"
            )["calls"]
        except (OSError, ValueError):
            calls = []
        try:
            conn = self.redis.client()
            try:
                registered = all(conn.exists(f"rq:worker:{w.name}") for w in self.workers)
            finally:
                conn.close()
        except (redis.RedisError, OSError):
            registered = False
        ok = web_ok and bool(calls) and registered
        return ok, f"web={web_ok} bot polls={bool(calls)} workers={registered}"

    def wait_ready(self, timeout: float = STARTUP) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while True:
            ok, state = self.ready()
            if ok:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"stack not ready: {state}\n{self.logs()}")
            time.sleep(0.2)

    def heal(self) -> None:
        """Between tests: whatever died is started again, so one scenario's damage does
        not become the next one's failure."""
        for proc in (self.tg_proc, self.yk_proc, self.bot, self.web):
            if proc is not None and not proc.alive():
                proc.start()
        for worker in list(self.workers):
            if not worker.alive():
                self.workers.remove(worker)
                self.retired.append(worker)
        while len(self.workers) < self.worker_count:
            self.start_worker()
        if not self.redis.answers():
            self.redis.start()
        self.wait_ready()

    def check_alive(self) -> None:
        for proc in self.processes():
            if not proc.expected_dead and not proc.alive():
                raise AssertionError(
                    f"{proc.name} exited with {proc.proc.returncode if proc.proc else None}:\n"
                    f"{proc.log(80)}"
                )

    def logs(self, lines: int = 30) -> str:
        procs = [*self.processes(), *self.retired]
        return "\n".join(f"----- {p.name}\n{p.log(lines)}" for p in procs)

    def stop(self) -> None:
        procs = [*self.processes(), *self.retired]
        for proc in procs:
            if proc.alive():
                proc.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + 20
        while any(p.alive() for p in procs) and time.monotonic() < deadline:
            time.sleep(0.1)
        for proc in procs:
            horses = proc.horses() if isinstance(proc, WorkerProc) else []
            proc.kill()
            for pid in horses:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)

    def next_user_id(self) -> int:
        self._user_seq += 1
        return 700_000 + self._user_seq

    # ------------------------------------------------------------------ chaos
    def current_operations(self, worker: WorkerProc) -> list[int]:
        """The operation the worker says it is running (RQ's worker hash)."""
        try:
            conn = self.redis.client()
            try:
                job_id = conn.hget(f"rq:worker:{worker.name}", "current_job")
            finally:
                conn.close()
        except (redis.RedisError, OSError):
            return []
        if not job_id:
            return []
        parsed = parse_job_id(job_id)
        return [parsed[0]] if parsed is not None else []

    def kill_horse(self, worker: WorkerProc) -> Kill | None:
        horses = worker.horses()
        if not horses:
            return None
        ops = self.current_operations(worker)
        for pid in horses:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        kill = Kill(time.monotonic(), "horse", worker.name, horses, ops)
        self.kills.append(kill)
        return kill

    def kill_worker(self, worker: WorkerProc, *, restart: bool = True) -> Kill:
        ops = self.current_operations(worker)
        pids = [worker.pid, *worker.kill_with_horses()]
        self.workers.remove(worker)
        self.retired.append(worker)
        kill = Kill(time.monotonic(), "worker", worker.name, pids, ops)
        self.kills.append(kill)
        if restart:
            self.start_worker()
        return kill


class Scene:
    """One test's view of a stack: emulator clients, a database engine and the users, in
    the test's event loop."""

    def __init__(self, stack: ChaosStack) -> None:
        self.stack = stack
        self.tg = TelegramEmulatorClient(stack.tg_url, token=TOKEN)
        self.yk = YooKassaEmulatorClient(stack.yk_url)
        self.engine: AsyncEngine = make_engine(stack.database_url, pool_size=10)
        self.kills_before = len(stack.kills)

    async def close(self) -> None:
        await self.tg.close()
        await self.yk.close()
        await self.engine.dispose()

    @property
    def kills(self) -> list[Kill]:
        return self.stack.kills[self.kills_before :]

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        return make_sessionmaker(self.engine)

    def logs(self, lines: int = 30) -> str:
        return self.stack.logs(lines)

    def user(self, *, language: str = "ru") -> ChaosUser:
        user_id = self.stack.next_user_id()
        return ChaosUser(
            self, self.tg.user(user_id, first_name=f"Chaos {user_id % 1000}", language=language)
        )

    async def reset(self) -> None:
        """A clean slate for a test: no faults, no flood limits, empty tables."""
        await self.tg.reset_faults()
        await self.tg.clear_flood_limits()
        await self.yk.reset_faults()
        # Ids start again at 1 while Redis keeps the previous test's keys: every key the
        # workers derive from an operation (the "delivered" marker, the lock, RQ's job
        # "op-<id>-<token>") carries its random key token, so no old key names a new one.
        async with self.engine.begin() as conn:
            # The ledger refuses TRUNCATE (append-only); a replica session fires no trigger.
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            await conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))

    async def operations(self) -> list[Operation]:
        async with self.sessionmaker() as session:
            return list((await session.scalars(select(Operation).order_by(Operation.id))).all())

    async def active_operations(self) -> list[Operation]:
        return [op for op in await self.operations() if op.status in ACTIVE]

    async def drain(self, timeout: float = 300.0) -> None:  # noqa: ASYNC109
        """Wait until no operation is queued or running (jobs run or the sweeper voids them)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                active = await self.active_operations()
            except Exception:  # noqa: BLE001 - the database may be restarting
                active = [None]
            if not active:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"operations still active after {timeout:.0f} s: "
                    f"{[(o.id, o.status, o.deadline_at) for o in active if o]}\n{self.logs()}"
                )
            await asyncio.sleep(0.5)

    async def wait_ready(self, timeout: float = STARTUP) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while True:
            ok, state = await asyncio.to_thread(self.stack.ready)
            if ok:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"stack not ready: {state}\n{self.logs()}")
            await asyncio.sleep(0.2)

    async def kill_loop(
        self,
        stop: asyncio.Event,
        *,
        every: tuple[float, float] = (1.5, 3.5),
        worker_share: float = 0.25,
        max_worker_kills: int | None = None,
        seed: int = 7,
    ) -> None:
        """Until ``stop``: every few seconds SIGKILL a busy work-horse, or now and then a
        whole worker (with its horse and scheduler), which is then replaced."""
        rng = random.Random(seed)
        stack = self.stack
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), rng.uniform(*every))
            if stop.is_set():
                return
            live = [w for w in stack.workers if w.alive()]
            if not live:
                continue
            worker = rng.choice(live)
            worker_kills = sum(k.what == "worker" for k in self.kills)
            if rng.random() < worker_share and (
                max_worker_kills is None or worker_kills < max_worker_kills
            ):
                stack.kill_worker(worker)
            else:
                # Wait (briefly) for a horse in the middle of an operation: killing an idle or
                # finishing one proves nothing (a job takes a few tenths of a second).
                for _ in range(100):
                    busy = [
                        w
                        for w in stack.workers
                        if w.alive() and w.horses() and stack.current_operations(w)
                    ]
                    if busy:
                        kill = stack.kill_horse(rng.choice(busy))
                        if kill is not None and kill.operation_ids:
                            break
                        # Its operation ended between the look and the kill: look again, so
                        # that a short scenario's few kills do hit operations.
                    if stop.is_set():
                        break
                    await asyncio.sleep(0.02)


# --------------------------------------------------------------------------------- users


class Lost(Exception):
    """The bot did not answer at all (the update was lost) or said it failed; the user tries
    again (after :func:`retry_pause`)."""


async def retry_pause(attempt: int) -> None:
    """A user's pause before trying again: 1, 2, 4, 8, then 10 s. An apology comes at once,
    so without it the tries of an outage (a database restarting) would all fall into it."""
    await asyncio.sleep(min(2.0**attempt, 10.0))


@dataclass
class Step:
    """What happened to one photo the user sent."""

    request_message_id: int
    operation_id: int | None
    outcome: str  # the operation's final status, or "refused" / "lost" / "not-queued"
    sent_at: float
    queued_at: float | None = None
    done_at: float | None = None


class ChaosUser:
    """One emulated user with a script: open ⬆️ Улучшить, send photos, top up, pay."""

    def __init__(self, scene: Scene, tg: TelegramUser) -> None:
        self.scene = scene
        self.tg = tg
        self.steps: list[Step] = []
        self.payments: list[str] = []  # YooKassa payment ids this user paid
        self.invoice: Message | None = None  # the bot's last "pay here" message

    @property
    def chat_id(self) -> int:
        return self.tg.chat_id

    async def _wait(
        self,
        predicate: Callable[[Message], bool],
        what: str,
        timeout: float,  # noqa: ASYNC109
    ) -> Message:
        try:
            # The bot's "something went wrong": a request it failed.
            apology = t("bot-error", self.tg.language)
            found = await self.tg.wait_for(lambda m: predicate(m) or apology in m.text, timeout)
        except TimeoutError:
            raise Lost(f"user {self.tg.user_id}: no {what}") from None
        if not predicate(found):
            # The bot says the request failed: try again now, like a user would, instead of
            # waiting out the timeout for an answer that will not come.
            raise Lost(f"user {self.tg.user_id}: no {what}, the bot apologised")
        return found

    async def open_upscale(self, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        """/start, then ⬆️ Улучшить; retried when an update is lost."""
        for attempt in range(8):
            try:
                await self.tg.send_text("/start")
                menu = await self._wait(lambda m: "⬆️ Улучшить" in m.button_texts, "menu", timeout)
                await self.tg.press(menu, text="⬆️ Улучшить")
                await self._wait(lambda m: "Пришлите фото" in m.text, "upscale prompt", timeout)
                return
            except Lost:
                await retry_pause(attempt)
        raise AssertionError(
            f"user {self.tg.user_id} never got into ⬆️ Улучшить\n"
            f"{await self.tg.transcript()}\n{self.scene.logs()}"
        )

    async def operation_for(self, request_key: str) -> Operation | None:
        async with self.scene.sessionmaker() as session:
            return await session.scalar(
                select(Operation).where(Operation.request_key == request_key)
            )

    async def upscale(
        self,
        photo: bytes,
        *,
        answer_timeout: float = 60.0,  # noqa: ASYNC109
        final_timeout: float = 300.0,
        on_queued: Callable[[Step], Awaitable[None]] | None = None,
    ) -> Step:
        """Send a photo in ⬆️ mode; follow it to its outcome.

        The operation row (keyed by this message) says whether it was charged; without one,
        the bot's answer says why (not enough money, or the mode was forgotten); without
        any answer the update was lost."""
        apology = t("bot-error", self.tg.language)
        sent_at = time.monotonic()
        message = await self.tg.send_photo(photo)
        key = f"{self.chat_id}:{message.message_id}"
        step = Step(message.message_id, None, "lost", sent_at)
        self.steps.append(step)
        deadline = time.monotonic() + answer_timeout
        mark = self.tg.mark
        while True:
            try:
                op = await self.operation_for(key)
            except Exception:  # noqa: BLE001 - the database may be restarting
                op = None
            if op is not None:
                step.operation_id = op.id
                step.queued_at = time.monotonic()
                break
            answers = [m for m in await self.tg.bot_messages() if m.version > mark]
            if any(
                apology in m.text
                and (m.raw.get("reply_to_message") or {}).get("message_id") == message.message_id
                for m in answers
            ):
                # The bot failed this photo. A charge it made was written (and reversed)
                # before it said so: once the database answers, the row decides.
                try:
                    op = await self.operation_for(key)
                except Exception:  # noqa: BLE001 - the database may be restarting: ask again
                    pass
                else:
                    if op is None:
                        return step  # lost: the user sends it again
                    step.operation_id = op.id
                    step.queued_at = time.monotonic()
                    break
            if any("Бесплатные операции закончились" in m.text for m in answers):
                step.outcome = "refused"
                return step
            if any("сначала выберите режим" in m.text or "Что сделаем" in m.text for m in answers):
                step.outcome = "not-in-mode"
                return step
            if time.monotonic() > deadline:
                return step  # lost
            await asyncio.sleep(0.1)
        if on_queued is not None:
            await on_queued(step)
        deadline = time.monotonic() + final_timeout
        while True:
            try:
                op = await self.operation_for(key)
            except Exception:  # noqa: BLE001
                op = None
            if op is not None and op.status in FINAL:
                step.outcome = op.status
                step.done_at = time.monotonic()
                if op.status != OperationStatus.SUCCEEDED:
                    # The notice follows the refund's commit: let it arrive before the next
                    # photo, so every message in the chat belongs to one request.
                    await self.wait_refund_notice(message.message_id)
                return step
            if time.monotonic() > deadline:
                step.outcome = f"stuck-{op.status if op else '?'}"
                return step
            await asyncio.sleep(0.2)

    async def upscales(self, photo: bytes, count: int, *, answer_timeout: float = 30.0) -> None:
        """Send photos until ``count`` were charged; a lost update or a forgotten mode (the
        FSM state lives in Redis) sends the user back through /start, like a real user."""
        await self.open_upscale()
        charged = 0
        for _ in range(count * 4):
            if charged >= count:
                return
            step = await self.upscale(photo, answer_timeout=answer_timeout)
            if step.operation_id is None:
                await self.open_upscale()
                continue
            charged += 1
        if charged < count:
            raise AssertionError(
                f"user {self.tg.user_id}: {charged} of {count} operations charged\n"
                f"{await self.tg.transcript()}\n{self.scene.logs()}"
            )

    async def grant(self, rubles: int) -> None:
        """Money on the balance without a top-up (an admin adjustment, on the ledger)."""
        settings = self.scene.stack.app_settings()
        async with self.scene.sessionmaker() as session:
            account, _ = await accounts.get_or_create_user(
                session,
                telegram_id=self.tg.user_id,
                free_operations=settings.FREE_OPERATIONS_COUNT,
                language=self.tg.language,
            )
            await accounts.adjust(
                session, user_id=account.id, amount=rubles * 100, reason="chaos test grant"
            )
            await session.commit()

    async def wait_refund_notice(self, after: int, timeout: float = 60.0) -> bool:  # noqa: ASYNC109
        from tests.chaos.books import is_refund_notice

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = await self.tg.bot_messages(include_deleted=True)
            if any(m.message_id > after and is_refund_notice(m) for m in messages):
                return True
            await asyncio.sleep(0.2)
        return False

    async def top_up(
        self,
        rubles: int = 100,
        *,
        pay: bool = True,
        timeout: float = 90.0,  # noqa: ASYNC109
    ) -> str | None:
        """💰 → preset amount → (with ``pay``) the checkout page's "pay" button.
        Returns the YooKassa payment id (None if the bot could not create the payment)."""
        await self.tg.send_text("/menu")
        menu = await self._wait(
            lambda m: "💰 Оплатить / Баланс" in m.button_texts, "menu", timeout
        )
        await self.tg.press(menu, text="💰 Оплатить / Баланс")
        amounts = await self._wait(lambda m: f"{rubles} ₽" in m.button_texts, "amounts", timeout)
        await self.tg.press(amounts, text=f"{rubles} ₽")
        invoice = await self._wait(
            lambda m: "💳 Перейти к оплате" in m.button_texts
            or "не отвечает" in m.text  # YooKassa unreachable after the retries
            or "недоступно" in m.text,  # top-ups not configured
            "invoice",
            timeout,
        )
        if "💳 Перейти к оплате" not in invoice.button_texts:
            return None
        self.invoice = invoice
        url = invoice.button("💳 Перейти к оплате").url
        assert url is not None
        payment_id = YooKassaEmulatorClient.payment_id_from_url(url)
        if pay:
            await self.scene.yk.pay(payment_id)
            self.payments.append(payment_id)
        return payment_id

    async def wait_credited(self, count: int, timeout: float = 120.0) -> None:  # noqa: ASYNC109
        """Until ``count`` "✅ Баланс пополнен" messages are in the chat."""
        deadline = time.monotonic() + timeout
        while True:
            credited = [
                m
                for m in await self.tg.bot_messages()
                if "Баланс пополнен" in m.text or "Оплата получена" in m.text
            ]
            if len(credited) >= count:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"user {self.tg.user_id}: {len(credited)} of {count} top-ups confirmed\n"
                    f"{await self.tg.transcript()}\n{self.scene.logs()}"
                )
            await asyncio.sleep(0.2)
