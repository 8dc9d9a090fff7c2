"""Engine and session factory. The caller of the billing service owns the transaction."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from billing.settings import normalize_database_url


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
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
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
