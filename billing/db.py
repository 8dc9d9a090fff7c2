"""Engine and session factory. The caller of the billing service owns the transaction."""

from __future__ import annotations

import time
import weakref

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from billing.settings import normalize_database_url


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int | None = None,
    echo: bool = False,
    ping_idle_after: float | None = None,
) -> AsyncEngine:
    """The engine: ``pool_size`` kept connections plus ``max_overflow`` (default as many)
    opened under a burst and closed when returned.

    ``ping_idle_after``: instead of pinging every connection at checkout (``pool_pre_ping``),
    check closed connections for free and ping only those idle that long (see
    ``_check_on_checkout``); only for a process whose event loop keeps running. The pool is
    then LIFO, so a light load keeps reusing the same warm connections.
    """
    url = normalize_database_url(url)
    if url.startswith("sqlite"):
        # Several processes (bot, worker, web) share one SQLite file: WAL lets readers go on
        # while one writer writes, the busy timeout waits for the lock instead of failing, and
        # BEGIN IMMEDIATE takes the write lock up front so two transactions never deadlock
        # upgrading a read lock (the SQLAlchemy docs' "serializable isolation" recipe).
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn):  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    engine = create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
        pool_pre_ping=ping_idle_after is None,
        pool_use_lifo=ping_idle_after is not None,
        pool_recycle=1800,
    )
    if ping_idle_after is not None:
        _check_on_checkout(engine, ping_idle_after)
    return engine


def _check_on_checkout(engine: AsyncEngine, idle_after: float) -> None:
    """A cheaper ``pool_pre_ping`` for a process whose event loop always runs (the web server).

    ``pool_pre_ping`` costs three round trips per checkout with asyncpg (BEGIN, a ping,
    ROLLBACK). Instead, at checkout:

    * a connection the server closed (a PostgreSQL restart or crash, idle_session_timeout,
      a terminated backend) is already marked closed by asyncpg, whose protocol saw the
      socket close while the loop ran: replaced, no round trip;
    * a connection idle for ``idle_after`` seconds or more is pinged, for connections that
      died silently (a dropped NAT or firewall entry) and so do not look closed;
    * any other connection is used as it is. If it is dead after all, the statement fails
      with a disconnect error: SQLAlchemy invalidates the pool, the request answers 503 and
      is delivered again — the same as a connection dying between pre-ping and statement.

    ``DisconnectionError`` from a checkout listener makes the pool discard that connection
    and check out another (SQLAlchemy's documented pessimistic-disconnect hook).

    Kept for its measured gain (``bench/internals.py``, same run, 16 concurrent two-statement
    transactions on PostgreSQL): +22 % and +31 % transactions/s over ``pool_pre_ping``.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi_connection, record):  # type: ignore[no-untyped-def]
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection, record, _proxy):  # type: ignore[no-untyped-def]
        driver = record.driver_connection
        if driver is not None and driver.is_closed():
            raise exc.DisconnectionError("the server closed the connection")
        last = record.info.get("checked_in_at")
        if last is not None and time.monotonic() - last >= idle_after:
            try:
                dbapi_connection.ping()
            except Exception as error:  # noqa: BLE001 - any failure means: use another one
                raise exc.DisconnectionError(f"ping failed: {type(error).__name__}") from error


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def one_statement_sessions(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> async_sessionmaker[AsyncSession]:
    """Sessions on the same engine whose statements commit each by itself (AUTOCOMMIT): no
    BEGIN and COMMIT round trips. Only for a unit of work that IS one statement, such as a
    conditional ``UPDATE ... RETURNING`` (atomic on its own)."""
    engine: AsyncEngine = sessionmaker.kw["bind"]
    if engine.dialect.name != "postgresql":
        # SQLite: a local file, BEGIN costs no round trip (and takes the lock). And only on
        # PostgreSQL are the billing's units of work one statement (the credit's CTE).
        return sessionmaker
    made = _one_statement.get(sessionmaker)
    if made is None:
        made = make_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"))
        _one_statement[sessionmaker] = made
    return made


_one_statement: weakref.WeakKeyDictionary[
    async_sessionmaker[AsyncSession], async_sessionmaker[AsyncSession]
] = weakref.WeakKeyDictionary()
