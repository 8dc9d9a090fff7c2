"""Shared fixtures: real PostgreSQL and Redis (the run fails, never skips, without them),
SQLite in a temp file, the project's Settings, and the ledger audit after every test."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import psycopg
import pytest
import redis
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from alembic import command
from billing.audit import audit
from billing.db import make_engine, make_sessionmaker
from billing.heap import freeze_startup_heap
from billing.settings import Settings

if TYPE_CHECKING:  # aiogram's import builds ~600 pydantic models: ~4 s of CPU, which the
    # pytest-xdist controller (it runs no test) need not pay
    from aiogram import Bot

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_BASE_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
# Every table, children before parents (SQLite deletes in this order). ``plans`` is emptied
# too and its seeds (migration 0004) put back with their ids: each test starts from the
# migration's catalogue, whatever an earlier test edited, archived or added.
TABLES = (
    "payment_refunds",
    "payment_notices",
    "ledger_entries",
    "operations",
    "user_plans",
    "payments",
    "plans",
    "users",
    "operation_models",
)


def pytest_sessionstart(session: pytest.Session) -> None:
    """No PostgreSQL or Redis is a failed run, not a skipped one."""
    problems = []
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001
        problems.append(f"PostgreSQL at {PG_ADMIN_URL} does not answer: {exc}")
    try:
        redis.Redis.from_url(REDIS_BASE_URL, socket_timeout=5).ping()
    except Exception as exc:  # noqa: BLE001
        problems.append(f"Redis at {REDIS_BASE_URL} does not answer: {exc}")
    if problems:
        pytest.exit("\n".join(problems) + "\nStart them (see README) and run again.", returncode=3)


@pytest.hookimpl(wrapper=True)
def pytest_collection(session: pytest.Session) -> Generator[None, object, object]:
    """No garbage collection while the test modules and what they import load (pydantic's
    model building sets the collector off over and over): `--collect-only` of the fast tier,
    7.37 -> 6.12 s of CPU.

    Then each test process holds some million long-lived objects (aiogram's ~600 models,
    SQLAlchemy, the test modules) that every full garbage collection walked again, and the
    tests' short-lived objects set off thousands of collections. Frozen, the collector skips
    the former; fewer, larger young-generation passes for the latter. The fast tier's test
    CPU fell by ~8-20 % (tests/billing alone: 32.7 -> 25.2 s and 27.9 -> 25.4 s user CPU, same
    machine, back to back); ``gc.callbacks`` counted 4,683 collections and 6.2 s in billing +
    bot before, 916 and 2.9 s after. The bot, web and worker processes freeze their startup
    heap the same way (billing/heap.py)."""
    gc.disable()
    try:
        return (yield)
    finally:
        freeze_startup_heap()
        gc.set_threshold(20_000, 20, 50)
        gc.enable()


# The slow tier (left out of `make test-fast`, run by `make test` and CI): whatever starts
# processes, browsers or fault stacks. By path here, so test files need no marker; the
# workers' real-process tests carry `real_worker` (tests/workers/conftest.py).
SLOW_PATHS = (
    "tests/chaos/",
    "tests/sandbox_run/",
    "tests/billing/test_operator_commands.py::test_audit_exits_non_zero_and_names_the_",
    "tests/billing/test_deadline_margin.py::test_a_worker_with_a_too_small_margin_does_not_start",
    "tests/bot/test_main.py",
    "tests/bot/test_operation_end_to_end.py",
    "tests/bot/test_plans_end_to_end.py",
    "tests/bot/test_bot_process_light.py",  # imports the bot in a new interpreter
    # the bot long-polling over HTTP and a real `python -m workers --burst` (~8 s of CPU)
    "tests/bot/test_messages_per_operation.py::test_an_operation_costs_at_most_three_messages",
    # the same with a refund (on main since this branch began)
    "tests/bot/test_messages_per_operation.py::test_a_refunded_operation_costs_at_most_three_",
    "tests/billing/test_plans_cli.py::test_the_command_line_itself",  # `python -m billing`
    "tests/deploy/test_sandbox_extra.py::test_the_processes_start_without_the_sandbox_or_",
    "tests/web/test_entry_point.py",
    "tests/web/test_database_outage.py",  # a PostgreSQL server of its own per test
    "tests/web/test_operator_api_fuzz.py",  # the schemathesis CLI, some 700 requests
    "tests/workers/test_database_starts_again.py::test_operations_of_a_database_that_start",
    # Telegram's retry_after of 16 s is waited out in real time.
    "tests/workers/test_transient_telegram_errors_retry.py::test_a_long_flood_wait_is_waited",
    "tests/media/test_fal_sandbox.py::test_queue_shapes_and_control_api_over_the_command_line",
    "tests/sandbox/test_sandbox_text_and_runners.py::test_python_m_runner_serves_the_api",
)
SLOW_MARKERS = ("real_worker", "browser", "chaos")

# Tests that each hold tens of PostgreSQL connections at once (hundreds of concurrent
# charges, credits, notifications): under pytest-xdist they run one after another in one
# worker (--dist loadgroup), so that two of them never meet the server's max_connections.
MANY_CONNECTIONS = (
    "tests/billing/test_claim_operation.py",
    "tests/billing/test_concurrent_charges.py",
    "tests/billing/test_credit_exactly_once.py",
    "tests/billing/test_duplicate_request.py",
    "tests/billing/test_refund_exactly_once.py",
    "tests/web/test_cancellations.py",
    "tests/web/test_concurrent_notifications.py",
    "tests/web/test_refunds.py",
)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(SLOW_PATHS) or any(
            item.get_closest_marker(name) for name in SLOW_MARKERS
        ):
            item.add_marker(pytest.mark.slow)
        if item.nodeid.startswith("tests/chaos/"):
            # One shared stack per test process: under pytest-xdist (make test) all the
            # scenarios go to the same worker (--dist loadgroup).
            item.add_marker(pytest.mark.xdist_group("chaos"))
        elif item.nodeid.startswith(MANY_CONNECTIONS):
            item.add_marker(pytest.mark.xdist_group("many-connections"))


@pytest.fixture(scope="session", autouse=True)
def _one_tls_context_for_the_bots() -> Iterator[None]:
    """aiogram's ``AiohttpSession`` loads certifi's CA bundle into a new TLS context for each
    Bot: ~25 ms of CPU, where a process of ours makes a Bot or two but the tests make
    hundreds (a web stack, a worker harness, a job's bot per test). Here every session
    shares one context per CA file: the same configuration, and nothing changes a context
    once made. The tests speak plain HTTP to the emulators anyway."""
    import functools
    import ssl
    import types

    from aiogram.client.session import aiohttp as aiogram_aiohttp

    shared = types.SimpleNamespace(
        create_default_context=functools.cache(ssl.create_default_context)
    )
    aiogram_aiohttp.ssl = shared  # type: ignore[assignment]
    try:
        yield
    finally:
        aiogram_aiohttp.ssl = ssl  # type: ignore[assignment]


@pytest.fixture(scope="session", autouse=True)
def _no_tls_grace_when_a_bot_closes() -> Iterator[None]:
    """aiogram's ``AiohttpSession.close`` sleeps 250 ms after closing its aiohttp session, for
    TLS connections to wind down; the emulators speak plain HTTP. Here it closes the same
    session without the sleep: 250 ms in every test whose server or fixture closes a bot it
    built (a webhook-mode app, the lost-notifications pass, the in-process emulator checks)."""
    from aiogram.client.session.aiohttp import AiohttpSession

    original = AiohttpSession.close

    async def close(self: AiohttpSession) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    AiohttpSession.close = close  # type: ignore[method-assign]
    try:
        yield
    finally:
        AiohttpSession.close = original  # type: ignore[method-assign]


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.attributes["url"] = url
    config.attributes["configure_logger"] = False
    return config


def _pg_url(dbname: str, driver: str = "postgresql") -> str:
    parts = urlsplit(PG_ADMIN_URL)
    return f"{driver}://{parts.netloc}/{dbname}"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh database for this test run, migrated to head.

    Its commits do not wait for the WAL flush (``synchronous_commit = off``, for every
    connection to it, the workers' processes too): a commit took ~5.5 ms of disk wait, 0.2 ms
    without, and the tests commit tens of thousands of times. Only a server crash could lose
    the last commits; the crash scenarios (tests/chaos) run on a cluster of their own."""
    name = f"medialab_test_{os.getpid()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    url = _pg_url(name)
    command.upgrade(alembic_config(url), "head")
    yield url
    kept = _CLEANERS.pop(url, None)
    if kept is not None:
        kept[0].close()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'media_lab.db'}"
    command.upgrade(alembic_config(url), "head")
    return url


def _migration(filename: str):  # type: ignore[no-untyped-def]
    import importlib.util

    path = ROOT / "alembic" / "versions" / filename
    spec = importlib.util.spec_from_file_location(f"_migration_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ledger_triggers(dialect: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The append-only triggers' (create, drop) statements, from the migration that adds them."""
    return _migration("20261207_0003_review_holes.py").ledger_trigger_sql(dialect)


def _seed_plans() -> tuple[list[str], list[tuple[object, ...]]]:
    """The catalogue migration 0004 seeds: (columns, rows)."""
    seeds = _migration("20261207_0004_plans.py").SEED_PLANS
    columns = list(seeds[0])
    return columns, [tuple(row[c] for c in columns) for row in seeds]


def _seed_models() -> tuple[str, list[tuple[object, ...]]]:
    """The model catalogue migration 0008 seeds: (an INSERT with ? marks, rows)."""
    import json

    seeds = _migration("20261207_0008_operation_models.py").SEED
    insert = (
        "INSERT INTO operation_models (type, backend, model_id, params, units, enabled) "
        "VALUES (?, ?, ?, ?, NULL, ?)"
    )
    return insert, [(k, b, m, json.dumps(p), True) for k, b, m, p in seeds]


_CLEANERS: dict[str, tuple[psycopg.Connection, str]] = {}


def _pg_cleaner(url: str) -> tuple[psycopg.Connection, str]:
    """A connection kept for the run and the statements that empty every table of the
    schema (so a new migration's tables too) and restart every sequence."""
    cleaner = _CLEANERS.get(url)
    if cleaner is not None and not cleaner[0].closed and not cleaner[0].broken:
        return cleaner
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SET session_replication_role = replica")
    tables = [
        row[0]
        for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version' ORDER BY tablename"
        )
    ]
    sequences = [
        row[0]
        for row in conn.execute(
            "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1"
        )
    ]
    assert set(TABLES) <= set(tables), tables
    statements = [f'DELETE FROM "{table}"' for table in tables]
    statements += [f"SELECT setval('\"{sequence}\"', 1, false)" for sequence in sequences]
    _CLEANERS[url] = (conn, "; ".join(statements))
    return _CLEANERS[url]


def clean_tables(url: str) -> None:
    """Empty every table. The ledger refuses DELETE and TRUNCATE (migration 0003): on
    PostgreSQL the session runs as a replica, which fires no ordinary trigger; on SQLite the
    triggers are dropped for the delete and created again. The plans the migration seeds are
    put back (ids 1, 2, 3: the sequences start again), and the model catalogue's defaults.

    On PostgreSQL a DELETE of these few rows and a setval per sequence take well under a
    millisecond, where TRUNCATE ... RESTART IDENTITY took 30-150 ms (new files, fsync) before
    each of some 700 tests."""
    columns, rows = _seed_plans()
    insert = f"INSERT INTO plans ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    insert_models, models = _seed_models()
    if url.startswith("postgresql"):
        try:
            conn, statement = _pg_cleaner(url)
            conn.execute(statement)
        except psycopg.OperationalError:  # the server restarted under the kept connection
            _CLEANERS.pop(url, None)
            conn, statement = _pg_cleaner(url)
            conn.execute(statement)
        with conn.cursor() as cursor:
            cursor.executemany(insert.replace("?", "%s"), rows)
            cursor.executemany(insert_models.replace("?", "%s"), models)
    else:
        import sqlite3

        create, drop = _ledger_triggers("sqlite")
        conn = sqlite3.connect(url.split("///", 1)[1])
        for statement in drop:
            conn.execute(statement)
        for table in TABLES:
            conn.execute(f"DELETE FROM {table}")
        # plans.id is a rowid without AUTOINCREMENT: the seeds get ids 1, 2, 3 again.
        conn.executemany(insert, rows)
        conn.executemany(insert_models, models)
        for statement in create:
            conn.execute(statement)
        conn.commit()
        conn.close()


_clean = clean_tables


@pytest.fixture(params=["postgresql", "sqlite"])
def any_db_url(request: pytest.FixtureRequest) -> str:
    """Both databases: for the billing core and the schema."""
    url = request.getfixturevalue("pg_url" if request.param == "postgresql" else "sqlite_url")
    _clean(url)
    return url


@pytest.fixture
def db_url(pg_url: str) -> str:
    """PostgreSQL, cleaned: for everything above the billing core."""
    _clean(pg_url)
    return pg_url


_REDIS_DB: int | None = None
_REDIS_LEASE_SECONDS = 6 * 3600


def own_redis_db() -> int:
    """A Redis database number (1 to the server's ``databases`` - 1) leased to this test run
    alone.

    Two test runs on one machine (a developer's and CI's, or parallel sessions) must not flush
    each other's queues: the run takes the first free lease key in database 0 (SET NX, with
    an expiry so a killed run frees it) and gives it back when it ends.
    """
    global _REDIS_DB
    if _REDIS_DB is None:
        admin = redis.Redis.from_url(f"{REDIS_BASE_URL}/0")
        owner = f"{socket.gethostname()}:{os.getpid()}"
        count = int(admin.config_get("databases").get("databases", 16))
        for number in range(1, count):
            if admin.set(f"medialab-tests:db:{number}", owner, nx=True, ex=_REDIS_LEASE_SECONDS):
                _REDIS_DB = number
                break
        else:
            raise RuntimeError(
                f"all {count - 1} Redis test databases are leased by other test runs "
                "(redis-server --databases N gives more)"
            )
    return _REDIS_DB


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _REDIS_DB is not None:
        try:
            redis.Redis.from_url(f"{REDIS_BASE_URL}/0").delete(f"medialab-tests:db:{_REDIS_DB}")
        except redis.RedisError:
            pass


def run_redis_url() -> str:
    return f"{REDIS_BASE_URL}/{own_redis_db()}"


@pytest.fixture
def redis_url() -> str:
    """A Redis database of this test run's own, flushed before each test."""
    url = run_redis_url()
    redis.Redis.from_url(url).flushdb()
    return url


async def close_bot(bot: Bot) -> None:
    """``bot.session.close()``: without aiogram's 250 ms wait for TLS connections to wind
    down in the tests (``_no_tls_grace_when_a_bot_closes``)."""
    await bot.session.close()


@pytest.fixture
def retry_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits ``tg.retry`` begins (a 5xx's backoff, a 429's retry_after plus jitter), in
    order, each slept for a twentieth of it: a test asserts the waits asked for, not the
    clock, and the retry still yields to the event loop as a real wait does."""

    from tg import retry

    asked: list[float] = []

    async def shortened(seconds: float) -> None:
        asked.append(seconds)
        await asyncio.sleep(seconds / 20)

    monkeypatch.setattr(retry, "_sleep", shortened)
    return asked


@pytest.fixture
def billing_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Awaitable[tuple[int, str, str]]]:
    """``python -m billing ARGS`` as an operator types it, run in this process (a new
    interpreter costs ~0.5 s of CPU): ``(exit code, stdout, stderr)``, argparse's usage
    errors included. The command reads its settings from the environment: set
    DATABASE_URL (and the rest) with ``monkeypatch.setenv`` first."""

    from billing.__main__ import main

    monkeypatch.setenv("ENVIRONMENT", "test")
    monkeypatch.chdir(ROOT / "tests")  # no .env of a developer's

    async def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = await asyncio.to_thread(main, list(argv))
        except SystemExit as exc:  # argparse's usage errors
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def make_settings(
    database_url: str, redis_url: str | None = None, **overrides: object
) -> Settings:
    values: dict[str, object] = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url or run_redis_url(),
        "PRICE_PER_OPERATION": "10",
        "FREE_OPERATIONS_COUNT": 4,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type, call-arg]


async def assert_audit_clean(engine: AsyncEngine) -> None:
    async with make_sessionmaker(engine)() as session:
        problems = await audit(session)
    assert problems == [], "ledger audit failed:\n" + "\n".join(problems)


_ENGINES: dict[str, AsyncEngine] = {}


async def _engine(url: str) -> AsyncIterator[AsyncEngine]:
    """One engine per database for the test run, and its pool: the tests share one event
    loop (pyproject.toml), so the connections are kept from test to test. A new engine per
    test compiled every statement again (~30 ms of CPU); a new connection per test cost
    another ~20 ms (PostgreSQL's new backend loading its catalogue caches and planning the
    audit's statements afresh, ~14 ms, and asyncpg's set-up), some 25 s of the fast tier's
    CPU. Each table is emptied before each test (``clean_tables``), and a connection goes
    back to the pool rolled back."""
    engine = _ENGINES.get(url)
    if engine is None:
        engine = _ENGINES[url] = make_engine(url, pool_size=20)
    yield engine
    await assert_audit_clean(engine)


@pytest.fixture(scope="session", autouse=True)
async def _engines_closed_at_the_end() -> AsyncIterator[None]:
    """The kept engines' connections closed in the loop that made them: an aiosqlite
    connection left open holds a thread that the interpreter waits for at exit (~10 s)."""
    yield
    while _ENGINES:
        await _ENGINES.popitem()[1].dispose()


@pytest.fixture(autouse=True)
async def _no_task_outlives_its_test() -> AsyncIterator[None]:
    """The tests share one event loop: a task a test left behind (a poller, a server's
    handler) is cancelled when the test ends, as it was when each test had a loop of its
    own, so it cannot run into the next test."""
    before = asyncio.all_tasks()
    yield
    left = asyncio.all_tasks() - before - {asyncio.current_task()}
    for task in left:
        task.cancel()
    await asyncio.gather(*left, return_exceptions=True)


@pytest.fixture
async def any_engine(any_db_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on each database; the ledger audit must be clean when the test ends."""
    async for engine in _engine(any_db_url):
        yield engine


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on PostgreSQL; the ledger audit must be clean when the test ends."""
    async for engine in _engine(db_url):
        yield engine


@pytest.fixture
def sessionmaker(any_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(any_engine)
