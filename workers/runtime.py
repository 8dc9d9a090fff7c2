"""The worker process's configuration, set once by its composition root.

``python -m workers`` reads the Settings and calls :func:`configure` before the first fork;
every work-horse inherits them. Jobs and failure callbacks read them with :func:`settings`.
A job in a work-horse holds no connection beyond itself: the engine is kept (warmed up, with
an empty pool), while connections, sessions and the Bot are made inside each job (a fork
must never share a socket or an event loop with its parent).

The jobs the worker runs in its own process (:func:`in_process`: the submits, deliveries and
polls of hosted models, short network calls, :mod:`workers.worker`) run instead on one event
loop the process keeps (:func:`run_job`), with a database pool, a Bot and an HTTP session
kept on it between jobs: no connection is opened again per job. A horse forked later never
uses them (they belong to that loop, which only the worker's own process runs).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import mimetypes
import os
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from rq.job import Job
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from billing import operations as billing_operations
from billing.db import make_engine, make_sessionmaker
from billing.settings import Settings, operation_deadline_seconds
from tg.factory import bot_token, make_bot
from workers import delivery

log = logging.getLogger(__name__)

_settings: Settings | None = None
_engine: AsyncEngine | None = None  # see take_engine
_engine_url: str | None = None
_engine_in_use = False
_prototype: Bot | None = None
_prototype_key: tuple[str, str] | None = None  # (token, TELEGRAM_API_URL) it was made for
_in_process = False  # a job runs now in the worker's own process (see in_process)
_kept: _Kept | None = None  # the loop and connections of those jobs

T = TypeVar("T")


class NotConfigured(RuntimeError):
    pass


def configure(settings: Settings) -> None:
    global _settings, _prototype, _prototype_key
    _settings = settings
    delivery.configure(settings)
    _prototype = None
    _prototype_key = None


def settings() -> Settings:
    if _settings is None:
        raise NotConfigured(
            "the worker is not configured: start it with `python -m workers` "
            "(or call workers.runtime.configure(settings) first)"
        )
    return _settings


def job_timeout(job: Job | None, settings: Settings) -> float:
    """The job's timeout: the one it carries (set by the bot at enqueue; RQ's SIGALRM and its
    stuck-horse kill use it), this process's JOB_TIMEOUT_SECONDS only for a job without one.
    A bot and a worker whose settings differ must still agree on it."""
    timeout = float(job.timeout) if job is not None and job.timeout else 0.0
    return timeout if timeout > 0 else float(settings.JOB_TIMEOUT_SECONDS)


def deadline_seconds(settings: Settings, job: Job | None = None) -> int:
    """How long an operation claimed by ``job`` may stay running before the sweeper voids it:
    the job's own timeout plus the margin (``billing.settings.operation_deadline_seconds``,
    which says what the margin covers)."""
    return operation_deadline_seconds(settings, job_timeout=job_timeout(job, settings))


def _new_engine(settings: Settings) -> AsyncEngine:
    # Connections live for one job or pass, in an event loop that runs throughout: closed
    # ones are replaced at checkout for free, only idle ones are pinged (billing.db).
    return make_engine(settings.DATABASE_URL, pool_size=2, ping_idle_after=10.0)


def take_engine(settings: Settings) -> AsyncEngine:
    """The process's engine for one job, callback or maintenance pass; give it back with
    :func:`give_back_engine` after ``await engine.dispose()``.

    The engine (not its connections) outlives the pass: the worker makes it once and warms
    it up (:func:`warm_up`) before it forks, so every work-horse inherits a dialect already
    initialized and the job's statements already compiled, instead of redoing both per job.
    Its pool is replaced here without touching what it held (``dispose(close=False)``,
    SQLAlchemy's recipe for a fork): a connection belongs to one process and one event loop.
    A second user at the same time (none in a worker) gets an engine of its own.
    """
    global _engine, _engine_url, _engine_in_use
    if _engine_in_use:
        return _new_engine(settings)
    if _engine is None or _engine_url != settings.DATABASE_URL:
        _engine = _new_engine(settings)
        _engine_url = settings.DATABASE_URL
    else:
        _engine.sync_engine.dispose(close=False)
    _engine_in_use = True
    return _engine


def give_back_engine(engine: AsyncEngine) -> None:
    global _engine_in_use
    if engine is _engine:
        _engine_in_use = False


@dataclass
class _Kept:
    """The event loop of the jobs run in the worker's own process, and what they keep on it."""

    pid: int
    runner: asyncio.Runner
    engine: AsyncEngine | None = None
    bot: Bot | None = None
    http: aiohttp.ClientSession | None = None


@contextmanager
def in_process() -> Iterator[None]:
    """The job RQ performs meanwhile runs in the worker's own process (no work-horse):
    :func:`run_job` runs it on the kept loop (``MediaWorker.execute_job``)."""
    global _in_process
    _in_process = True
    try:
        yield
    finally:
        _in_process = False


def run_job(coro: Coroutine[Any, Any, T]) -> T:
    """Run a job's coroutine to its end. In a work-horse (or a test's worker thread): in an
    event loop of its own, closed after it (RQ runs an ``async def`` job in a new loop it
    never closes: harmless in a horse that exits, a leak of file descriptors in a process
    that runs job after job). In the worker's own process: on its kept loop; a job that
    raises (RQ's SIGALRM may land anywhere in it) leaves nothing running there: the loop,
    its tasks and its connections are dropped, the next job starts afresh."""
    if not _in_process:
        # As RQ runs it (no wait for leftover tasks or threads: a horse whose job timed out
        # exits at once), and then closed.
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(coro)
        finally:
            loop.close()
    global _kept
    if _kept is None or _kept.pid != os.getpid():
        _kept = _Kept(os.getpid(), asyncio.Runner())
    try:
        return _kept.runner.run(coro)
    except BaseException:
        close_kept()
        raise


def close_kept() -> None:
    """Close the kept loop: first its tasks cancelled (a job RQ's SIGALRM interrupted must
    not go on), then its connections closed (the worker's end, or after a job that raised)."""
    global _kept
    kept, _kept = _kept, None
    if kept is None or kept.pid != os.getpid():
        return
    try:
        kept.runner.run(_close_connections(kept))
    except BaseException as exc:  # noqa: BLE001 - what stays open, the process closes
        log.warning("kept connections not closed: %r", exc)
    finally:
        kept.runner.close()


async def _close_connections(kept: _Kept) -> None:
    current = asyncio.current_task()
    left = [task for task in asyncio.all_tasks() if task is not current]
    for task in left:
        task.cancel()
    await asyncio.gather(*left, return_exceptions=True)
    if kept.http is not None:
        await kept.http.close()
    if kept.bot is not None:
        await close_job_bot(kept.bot)
    if kept.engine is not None:
        await kept.engine.dispose()


def _kept_here() -> _Kept | None:
    """The kept state, when the running loop is the kept one (not a callback's own loop,
    not a horse's)."""
    if _kept is None or _kept.pid != os.getpid():
        return None
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return _kept if loop is _kept.runner.get_loop() else None


def kept() -> bool:
    """Whether this job runs on the kept loop (its connections outlive it)."""
    return _kept_here() is not None


def http_session() -> aiohttp.ClientSession | None:
    """The kept HTTP session (the model provider's calls), or None: the caller opens and
    closes one of its own."""
    state = _kept_here()
    if state is None:
        return None
    if state.http is None or state.http.closed:
        state.http = aiohttp.ClientSession()
    return state.http


@asynccontextmanager
async def resources(settings: Settings) -> AsyncIterator[tuple[async_sessionmaker, Bot]]:
    """A sessionmaker and a Bot for one job, callback or maintenance pass, closed at the end.
    Made inside each: RQ forks a work-horse per job and runs an ``async def`` job in a fresh
    event loop. On the kept loop (:func:`run_job`): the kept ones, left open."""
    state = _kept_here()
    if state is not None:
        if state.engine is None:
            state.engine = _new_engine(settings)
        if state.bot is None:
            state.bot = make_job_bot(settings)
        yield make_sessionmaker(state.engine), state.bot
        return
    engine = take_engine(settings)
    try:
        bot = make_job_bot(settings)
        try:
            yield make_sessionmaker(engine), bot
        finally:
            await close_job_bot(bot)
    finally:
        try:
            await engine.dispose()
        finally:
            give_back_engine(engine)


async def row_key_token(settings: Settings, operation_id: int) -> str | None:
    """The operation's key token, read from its row (None if there is no such operation)."""
    engine = take_engine(settings)
    try:
        async with make_sessionmaker(engine)() as session:
            return await billing_operations.operation_key_token(session, operation_id=operation_id)
    finally:
        try:
            await engine.dispose()
        finally:
            give_back_engine(engine)


def make_job_bot(settings: Settings) -> Bot:
    """A new Bot with a new (unopened) HTTP session, for one job.

    ``AiohttpSession()`` loads the CA bundle into a new TLS context each time (tens of ms,
    per job). The session is copied instead from a prototype made once in the parent, which
    never opens it: the copy shares only that TLS context (configuration, no socket); its
    ClientSession, connections and event loop are created in the job.

    Uses aiogram's private ``_session`` and ``_connector_init``: kept because, with
    :func:`close_job_bot`, it makes the job's round trip 48 % shorter than aiogram's public
    API (296 vs 567 ms median, bench/jobs.py, same run; bench/RESULTS.md).
    """
    global _prototype, _prototype_key
    key = (bot_token(settings), settings.TELEGRAM_API_URL)
    if _prototype is None or _prototype_key != key:
        _prototype = make_bot(settings)
        _prototype_key = key
    proto = _prototype.session
    assert isinstance(proto, AiohttpSession) and proto._session is None  # never opened
    session = copy.copy(proto)
    session._connector_init = dict(proto._connector_init)
    return Bot(token=_prototype.token, session=session, default=_prototype.default)


async def close_job_bot(bot: Bot) -> None:
    """Close a job Bot's HTTP session without aiogram's 250 ms pause.

    ``AiohttpSession.close()`` sleeps 250 ms after closing, for TLS connections to shut down
    gracefully. A job's Bot is done when the job is, and the work-horse exits right after:
    that pause was a quarter of a second added to every job's round trip. (aiogram 3.31 is
    pinned; ``_session`` is its aiohttp ClientSession.) Measured with :func:`make_job_bot`:
    48 % of the round trip (bench/RESULTS.md).
    """
    session = bot.session
    inner = getattr(session, "_session", None)
    if inner is not None and not inner.closed:
        await inner.close()
    elif not isinstance(session, AiohttpSession):
        await session.close()


def warm_up(settings: Settings) -> None:
    """Do once in the worker what every forked work-horse would otherwise redo per job:
    parse the text catalogue, build aiogram's response models, configure the ORM mappers,
    load the image codecs and MIME table, build the TLS context of the job Bots."""
    from aiogram.methods import (
        DeleteMessage,
        EditMessageText,
        GetFile,
        SendChatAction,
        SendDocument,
        SendMessage,
        SendPhoto,
    )
    from PIL import Image
    from sqlalchemy.orm import configure_mappers

    import billing.models  # noqa: F401 - the mappers to configure
    from texts.i18n import SUPPORTED, t
    from tg.response_models import pin

    for language in SUPPORTED:
        t("worker-processing", language)
    for method in (
        DeleteMessage,
        EditMessageText,
        GetFile,
        SendChatAction,
        SendDocument,
        SendMessage,
        SendPhoto,
    ):
        pin(method)
    configure_mappers()
    Image.init()
    mimetypes.init()
    make_job_bot(settings)
    _warm_engine(settings)


def _warm_engine(settings: Settings) -> None:
    """Connect once (the dialect's first-connect initialization) and compile the job's
    statements (SQLAlchemy caches them per engine), on an operation that does not exist, in
    a transaction rolled back; then close the connection. A database that is down now costs
    nothing but the warm-up: every job connects on its own."""
    import asyncio

    from billing import operations

    async def run() -> None:
        engine = take_engine(settings)
        try:
            async with engine.connect() as conn:
                session = AsyncSession(bind=conn)
                # With a key token, as every job claims (another statement without one).
                await operations.claim_operation(
                    session, operation_id=0, deadline_seconds=1, key_token=""
                )
                await operations.claimed_operation(session, operation_id=0)
                await operations.complete_operation(session, operation_id=0, result_ref={})
                await session.rollback()
                await session.close()
        finally:
            try:
                await engine.dispose()
            finally:
                give_back_engine(engine)

    try:
        asyncio.run(run())
    except Exception as exc:  # noqa: BLE001 - only a warm-up
        log.warning("database warm-up skipped: %s", exc)
