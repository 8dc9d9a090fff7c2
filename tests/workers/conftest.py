"""The job layer end to end: real PostgreSQL, real Redis, Media Lab's RQ worker and the
Telegram emulator (in this test's event loop, on a free port) as the Bot API it talks to.

``h.start_worker()`` runs the worker class on RQ's ``SimpleWorker`` in a thread of this
process (no fork, no interpreter start-up): the job logic, RQ's callbacks, retries and the
sweeper are the real ones. A test of the process itself (a killed work-horse, SIGALRM
timeouts, SIGTERM, a log scanned for secrets, two workers of different settings) is marked
``@pytest.mark.real_worker``: there ``h.start_worker()`` starts ``python -m workers``.

The test acts as the bot would: it charges with ``operations.charge``, posts the "в очереди"
status message through the Bot API, records it with ``set_operation_job`` and enqueues with
``jobqueue.queue.enqueue_operation``. Inputs are uploaded to the emulator as a user, so the
job downloads them by a real file id.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot
from redis import Redis
from rq import SimpleWorker
from rq.exceptions import StopRequested
from rq.timeouts import TimerDeathPenalty
from rq.worker import BaseWorker
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from billing import accounts, ai_models, operations
from billing.db import make_sessionmaker
from billing.models import LedgerEntry, LedgerKind, Operation
from billing.settings import Settings
from jobqueue.queue import enqueue_operation, job_id_for, media_queue
from sandbox._common import ServerHandle, free_port
from sandbox.telegram import create_app
from sandbox.telegram_client import Message, TelegramEmulatorClient, TelegramUser
from tests.conftest import close_bot, make_settings
from tg.factory import SANDBOX_TOKEN, make_bot
from workers import runtime
from workers.operations import hook_pid_key
from workers.stale_keys import log_stale_keys
from workers.worker import MediaWorker

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
WAIT = 90.0  # generous: conditions are awaited, never slept for

FINAL = ("succeeded", "refunded", "failed")


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture(scope="session")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis server of these tests' own: other test runs on this machine flush the shared
    one's numbered databases, which would wipe our queues and workers mid-test."""
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}"
    client = Redis.from_url(url)
    deadline = time.monotonic() + 30
    while True:
        try:
            client.ping()
            break
        except Exception:  # noqa: BLE001 - not up yet
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("could not start redis-server") from None
            time.sleep(0.05)
    client.close()
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def redis_url(own_redis: str) -> str:
    """Overrides the shared fixture: a flushed database of our own Redis server."""
    url = f"{own_redis}/0"
    Redis.from_url(url).flushdb()
    return url


@pytest.fixture
async def tg_server() -> AsyncIterator[ServerHandle]:
    async with ServerHandle(create_app()) as server:
        yield server


@pytest.fixture
async def tg(tg_server: ServerHandle) -> AsyncIterator[TelegramEmulatorClient]:
    async with TelegramEmulatorClient(tg_server.url, token=SANDBOX_TOKEN) as client:
        yield client


class WorkerProcess:
    """``python -m workers`` in its own session (so its RQ scheduler dies with it)."""

    def __init__(self, env: dict[str, str], log_path: Path, args: list[str]) -> None:
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.stopping = False
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workers", *args],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the worker and its process group (the RQ scheduler); not its horses,
        which RQ puts in groups of their own."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def terminate(self) -> None:
        self.stopping = True
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.alive():
            self.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class _ThreadWorker(SimpleWorker, MediaWorker):
    """MediaWorker's jobs, callbacks and maintenance (sweeper, notices) without a fork."""

    # SIGALRM reaches only the main thread; the SIGALRM path itself is a real_worker test.
    death_penalty_class = TimerDeathPenalty

    def __init__(self, *args: Any, stop: threading.Event, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stop_event = stop
        self.waiting = False
        self.rq_scheduler: Any = None
        # For Harness.wait_idle: beats while waiting for a job, and jobs taken.
        self.idle_beats = 0
        self.jobs_taken = 0

    @property
    def dequeue_timeout(self) -> float:  # type: ignore[override]
        # Without the sweeper RQ would block on the queue for minutes; stop() is seen at
        # the next beat. A fraction of a second (BLPOP takes one since Redis 6): a test's
        # teardown waited up to a whole second for it.
        return 0.2

    def _install_signal_handlers(self) -> None:
        pass  # only the main thread may; stop() asks through stop_event instead

    def work(self, *args: Any, **kwargs: Any) -> bool:
        # RQ's own loop: MediaWorker.work would start it again after stop() ends it.
        return BaseWorker.work(self, *args, **kwargs)

    def dequeue_job_and_maintain_ttl(self, timeout: Any, max_idle_time: Any = None) -> Any:
        self.waiting = True
        try:
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        finally:
            self.waiting = False

    def reorder_queues(self, *args: Any, **kwargs: Any) -> None:
        # RQ calls it right after a job was dequeued, before its last beat while waiting:
        # counted here, a taken job is never seen as two idle beats (wait_idle).
        self.jobs_taken += 1
        super().reorder_queues(*args, **kwargs)

    def heartbeat(self, *args: Any, **kwargs: Any) -> None:
        # RQ beats between dequeue timeouts (at most SWEEP_INTERVAL_SECONDS, rounded up to
        # a second): a stop asked for ends the loop there, as SIGTERM does an idle worker.
        if self.waiting:
            if self.stop_event.is_set():
                raise StopRequested
            self.idle_beats += 1
        super().heartbeat(*args, **kwargs)

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()
        # `python -m workers` forks RQ's scheduler; here its pass (retries with an interval
        # back on the queue) runs in the maintenance step, every SWEEP_INTERVAL_SECONDS.
        from rq.scheduler import RQScheduler

        if self.rq_scheduler is None:
            self.rq_scheduler = RQScheduler(self.queues, connection=self.connection)
        if self.rq_scheduler.acquire_locks():
            self.rq_scheduler.enqueue_scheduled_jobs()


class _WorkerLog(logging.Filter):
    """What the worker threads log (the emulator and the test log from the main thread)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.threadName != "MainThread"


class InProcessWorker:
    """The worker of ``python -m workers`` in a thread: same startup steps (configure, warm
    up, stale-key check), same worker class on SimpleWorker; its log goes to a file like a
    process's. The API of :class:`WorkerProcess` (``log``, ``alive``, ``stop``)."""

    def __init__(self, settings: Settings, log_path: Path, name: str, sweep: bool) -> None:
        self.settings = settings
        self.log_path = log_path
        self.stopping = False
        self.pid = os.getpid()
        self._stop = threading.Event()
        self.worker: _ThreadWorker | None = None  # set once its thread made it
        self._handler = logging.FileHandler(log_path, encoding="utf-8")
        self._handler.setFormatter(
            logging.Formatter("%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
        )
        self._handler.addFilter(_WorkerLog())
        root = logging.getLogger()
        self._root_level = root.level
        root.setLevel(logging.INFO)
        root.addHandler(self._handler)
        self._thread = threading.Thread(target=self._run, args=(name, sweep), name=name)
        self._thread.start()

    def _run(self, name: str, sweep: bool) -> None:
        settings = self.settings
        runtime.configure(settings)
        runtime.warm_up(settings)
        log_stale_keys(settings)
        redis = Redis.from_url(settings.REDIS_URL)
        worker = _ThreadWorker(
            [media_queue(redis, settings)],
            connection=redis,
            name=f"{name}-{uuid_suffix()}",
            settings=settings,
            sweep=sweep,
            stop=self._stop,
        )
        self.worker = worker
        try:
            worker.work(logging_level="INFO")
        finally:
            redis.close()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def terminate(self) -> None:
        self.stopping = True
        self._stop.set()

    def kill(self) -> None:
        raise NotImplementedError("a thread cannot be killed: mark the test real_worker")

    def stop(self) -> None:
        self.terminate()
        self._thread.join(timeout=120)
        stuck = self._thread.is_alive()
        root = logging.getLogger()
        root.removeHandler(self._handler)
        root.setLevel(self._root_level)
        self._handler.close()
        assert not stuck, f"the in-process worker did not stop\n{self.log()}"

    def log(self) -> str:
        self._handler.flush()
        return self.log_path.read_text(errors="replace")


def uuid_suffix() -> str:
    import uuid

    return uuid.uuid4().hex[:8]


@dataclass
class Harness:
    settings: Settings
    engine: AsyncEngine
    tg: TelegramEmulatorClient
    tg_url: str
    redis: Redis
    tmp_path: Path
    bot: Bot
    real_processes: bool = False
    workers: list[Any] = field(default_factory=list)
    extra_pids: list[int] = field(default_factory=list)
    inputs: dict[int, list[str]] = field(default_factory=dict)  # what the bot passes a job
    tokens: dict[int, str] = field(default_factory=dict)  # each operation's key token
    _next_user: int = 5000

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        return make_sessionmaker(self.engine)

    # --- workers ---------------------------------------------------------------------
    def worker_env(self, **overrides: object) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("BOT_", "YOOKASSA_", "FAL_", "JOB_", "RQ_", "WORKER_"))
        }
        s = self.settings
        env.update(
            ENVIRONMENT="test",
            LOG_LEVEL="INFO",
            DATABASE_URL=s.DATABASE_URL,
            REDIS_URL=s.REDIS_URL,
            TELEGRAM_API_URL=self.tg_url,
            RQ_QUEUE=s.RQ_QUEUE,
            JOB_RETRIES=str(s.JOB_RETRIES),
            JOB_RETRY_INTERVALS=",".join(map(str, s.JOB_RETRY_INTERVALS)),
            TELEGRAM_RETRY_BACKOFF=",".join(map(str, s.TELEGRAM_RETRY_BACKOFF)),
            JOB_TIMEOUT_SECONDS=str(s.JOB_TIMEOUT_SECONDS),
            JOB_DEADLINE_MARGIN_SECONDS=str(s.JOB_DEADLINE_MARGIN_SECONDS),
            SWEEP_INTERVAL_SECONDS=str(s.SWEEP_INTERVAL_SECONDS),
            PRICE_PER_OPERATION=str(s.PRICE_PER_OPERATION),
            FREE_OPERATIONS_COUNT=str(s.FREE_OPERATIONS_COUNT),
            WORKER_TEST_HOOKS="1" if s.WORKER_TEST_HOOKS else "0",
        )
        env.update({k: str(v) for k, v in overrides.items()})
        return env

    def start_worker(self, *args: str, **env: object) -> Any:
        """A worker on RQ_QUEUE: ``python -m workers`` in a real_worker test, otherwise the
        same worker in a thread of this process (see the module's docstring)."""
        n = len(self.workers)
        log_path = self.tmp_path / f"worker-{n}.log"
        if self.real_processes:
            worker: Any = WorkerProcess(
                self.worker_env(**env), log_path, ["--name", f"w{n}", *args]
            )
        else:
            unknown = set(args) - {"--no-sweeper"}
            assert not unknown, f"in-process worker: no {unknown}; mark the test real_worker"
            values = {
                k: v for k, v in self.worker_env(**env).items() if k in Settings.model_fields
            }
            settings = Settings(_env_file=None, **values)  # type: ignore[arg-type, call-arg]
            worker = InProcessWorker(settings, log_path, f"w{n}", "--no-sweeper" not in args)
        self.workers.append(worker)
        return worker

    async def wait_ready(self, worker: WorkerProcess) -> None:
        """Until the worker listens on its queue (importing aiogram and OpenCV takes a while)."""

        async def check() -> bool:
            return "Listening on" in worker.log()

        await self.wait_until(check, f"{worker.log_path.name} to listen")

    async def wait_idle(self) -> None:
        """Until every job queued or running now has ended and the workers found the queue
        empty: the positive proof that a job enqueued before this call (by code that has
        returned) ran — or that none was, where a test asserts nothing happened.

        Per worker: two beats while waiting for a job, and no job taken since a first look
        at an empty queue. The first beat comes after any job it was running; between the
        two lies a whole empty wait on the queue (RQ beats again only after its dequeue
        timed out). Jobs scheduled for later (RQ's scheduled registry) are not waited for.
        """
        assert not self.real_processes, "wait_idle sees in-process workers only"
        queue = media_queue(self.redis, self.settings)

        async def started() -> list[_ThreadWorker]:
            found = [w.worker for w in self.workers if w.alive() and w.worker is not None]
            return found if len(found) == len(self.workers) else []

        workers = await self.wait_until(started, "the workers to start")

        async def empty() -> bool:
            return queue.count == 0

        while True:
            await self.wait_until(empty, "the queue to empty")
            seen = [(w.idle_beats, w.jobs_taken) for w in workers]

            async def beaten(seen: list[tuple[int, int]] = seen) -> bool:
                return all(
                    w.idle_beats >= beats + 2 or w.jobs_taken != taken
                    for w, (beats, taken) in zip(workers, seen, strict=True)
                )

            await self.wait_until(beaten, "the workers to wait on an empty queue")
            if all(w.jobs_taken == taken for w, (_, taken) in zip(workers, seen, strict=True)):
                return

    def logs(self) -> str:
        return "\n".join(f"--- {w.log_path.name}\n{w.log()}" for w in self.workers)

    # --- operations ------------------------------------------------------------------
    def user(self, *, language: str = "ru") -> TelegramUser:
        self._next_user += 1
        return self.tg.user(self._next_user, first_name="Тест", language=language)

    async def upload(
        self,
        user: TelegramUser,
        data: bytes,
        *,
        as_document: bool = False,
        file_name: str | None = None,
    ) -> str:
        message = await user.send_photo(data, as_document=as_document, file_name=file_name)
        assert message.file_id
        return message.file_id

    async def new_operation(
        self,
        user: TelegramUser,
        op_type: str,
        file_ids: list[str],
        *,
        text: str | None = None,
        hook: str | None = None,
        balance: int = 0,
        free: int | None = None,
        enqueue: bool = True,
    ) -> int:
        """Charge like the bot does, post the status message, enqueue. Returns the id."""
        input_ref: dict[str, Any] = {"file_ids": file_ids, "text": text, "language": user.language}
        if hook is not None:
            input_ref["test_hook"] = hook
        status = await self.bot.send_message(user.chat_id, "⏳ В очереди…")
        async with self.sessionmaker() as session:
            account, _ = await accounts.get_or_create_user(
                session,
                telegram_id=user.user_id,
                free_operations=self.settings.FREE_OPERATIONS_COUNT if free is None else free,
                language=user.language,
            )
            if balance:
                await accounts.adjust(
                    session, user_id=account.id, amount=balance, reason="test top-up"
                )
            # What runs it, recorded as the bot records it (bot.billed: the catalogue's use).
            use = (await ai_models.catalogue(session)).use(op_type, self.settings)
            if isinstance(use, ai_models.Use):
                input_ref["model"] = use.as_input()
            charged = await operations.charge(
                session,
                self.settings,
                user_id=account.id,
                op_type=op_type,
                request_key=f"{user.chat_id}:{status.message_id}",
                chat_id=user.chat_id,
                input_ref=input_ref,
            )
            await operations.set_operation_job(
                session,
                operation_id=charged.operation_id,
                job_id=job_id_for(charged.operation_id, charged.key_token),
                status_message_id=status.message_id,
            )
            await session.commit()
        self.inputs[charged.operation_id] = file_ids
        self.tokens[charged.operation_id] = charged.key_token
        if enqueue:
            self.enqueue(charged.operation_id)
        return charged.operation_id

    def enqueue(self, operation_id: int, file_ids: list[str] | None = None) -> None:
        """Enqueue as the bot does: with the operation's file ids (``file_ids`` to differ)."""
        enqueue_operation(
            media_queue(self.redis, self.settings),
            self.settings,
            operation_id,
            self.tokens[operation_id],
            file_ids=self.inputs.get(operation_id, []) if file_ids is None else file_ids,
        )

    # --- looking ---------------------------------------------------------------------
    async def operation(self, operation_id: int) -> Operation:
        async with self.sessionmaker() as session:
            return (
                await session.execute(select(Operation).where(Operation.id == operation_id))
            ).scalar_one()

    async def entries(self, operation_id: int, kind: LedgerKind) -> int:
        async with self.sessionmaker() as session:
            return await session.scalar(
                select(func.count())
                .select_from(LedgerEntry)
                .where(LedgerEntry.operation_id == operation_id, LedgerEntry.kind == kind.value)
            )

    async def wait_until(self, check: Callable[[], Any], what: str, patience: float = WAIT) -> Any:
        deadline = time.monotonic() + patience
        while True:
            value = await check()
            if value:
                return value
            for worker in self.workers:
                if not worker.stopping and not worker.alive():
                    raise AssertionError(f"a worker died waiting for {what}\n{self.logs()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.logs()}")
            await asyncio.sleep(0.05)

    async def wait_final(self, operation_id: int, patience: float = WAIT) -> Operation:
        async def check() -> Operation | None:
            op = await self.operation(operation_id)
            return op if op.status in FINAL else None

        return await self.wait_until(check, f"operation {operation_id} to finish", patience)

    async def wait_status(self, operation_id: int, status: str) -> Operation:
        async def check() -> Operation | None:
            op = await self.operation(operation_id)
            return op if op.status == status else None

        return await self.wait_until(check, f"operation {operation_id} to be {status}")

    async def wait_hook_pid(self, operation_id: int, attempt: int = 1) -> int:
        """The work-horse pid a sleep/hang hook published for this attempt."""

        key = hook_pid_key(operation_id, (await self.operation(operation_id)).key_token)

        async def check() -> int | None:
            raw = self.redis.get(key)
            if raw is None:
                return None
            pid, _, seen = raw.decode().partition(":")
            return int(pid) if int(seen) == attempt else None

        pid = await self.wait_until(check, f"the work-horse of operation {operation_id}")
        if pid != os.getpid():  # an in-process worker's "horse" is this process
            self.extra_pids.append(pid)
        return pid

    async def wait_message(
        self, user: TelegramUser, predicate: Callable[[Message], bool], what: str
    ) -> Message:
        try:
            return await user.wait_for(predicate, WAIT, since=0)
        except TimeoutError as exc:
            raise AssertionError(f"{what}: {exc}\n{self.logs()}") from None

    async def bot_messages(self, user: TelegramUser) -> list[Message]:
        return await user.bot_messages()


@pytest.fixture
def harness_settings(db_url: str, redis_url: str) -> Callable[..., Settings]:
    def build(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "JOB_RETRIES": 0,
            "JOB_TIMEOUT_SECONDS": 60,
            "JOB_DEADLINE_MARGIN_SECONDS": 30,
            "SWEEP_INTERVAL_SECONDS": 0.5,
            "WORKER_TEST_HOOKS": True,
            "RQ_QUEUE": "media-test",
            # RQ's retries and the worker's Telegram retries wait as in production, only
            # shorter (production: 2, 5, 15 s and 0.5, 1.5, 4 s): seconds per test otherwise.
            "JOB_RETRY_INTERVALS": [1],
            "TELEGRAM_RETRY_BACKOFF": (0.05, 0.15, 0.4),
        }
        values.update(overrides)
        return make_settings(db_url, redis_url, **values)

    return build


@pytest.fixture
async def harness_factory(
    request: pytest.FixtureRequest,
    engine: AsyncEngine,
    tg: TelegramEmulatorClient,
    tg_server: ServerHandle,
    harness_settings: Callable[..., Settings],
    tmp_path: Path,
) -> AsyncIterator[Callable[..., Harness]]:
    """``harness(**settings overrides)``; every worker it started is stopped at the end."""
    real = request.node.get_closest_marker("real_worker") is not None
    made: list[Harness] = []

    def make(**overrides: object) -> Harness:
        settings = harness_settings(TELEGRAM_API_URL=tg_server.url, **overrides)
        harness = Harness(
            settings=settings,
            engine=engine,
            tg=tg,
            tg_url=tg_server.url,
            redis=Redis.from_url(settings.REDIS_URL),
            tmp_path=tmp_path,
            bot=make_bot(settings),
            real_processes=real,
        )
        made.append(harness)
        return harness

    yield make
    for harness in made:
        for worker in harness.workers:
            await asyncio.to_thread(worker.stop)
        for pid in harness.extra_pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        await close_bot(harness.bot)
        harness.redis.close()


@pytest.fixture
def images() -> Iterator[Callable[[str], bytes]]:
    yield fixture_bytes
