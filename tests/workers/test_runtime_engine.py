"""The worker's engine: made and warmed up once in the worker, before it forks, so a
work-horse inherits an initialized dialect and compiled statements, never a connection."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from billing import operations
from tests.conftest import make_settings
from workers import runtime


@pytest.fixture(autouse=True)
def fresh_runtime() -> Iterator[None]:
    runtime._engine = None
    runtime._engine_url = None
    runtime._engine_in_use = False
    yield
    runtime._engine = None
    runtime._engine_url = None
    runtime._engine_in_use = False


def test_warm_up_initializes_and_compiles_but_keeps_no_connection(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(db_url)
    runtime.warm_up(settings)
    engine = runtime._engine
    assert engine is not None
    assert engine.dialect.server_version_info is not None  # first connect done
    pool = engine.sync_engine.pool
    assert pool.checkedin() == 0 and pool.checkedout() == 0  # nothing for a fork to share

    async def claim_load_post() -> None:
        taken = runtime.take_engine(settings)
        try:
            async with taken.connect() as conn:
                session = AsyncSession(bind=conn)
                await operations.claim_operation(
                    session, operation_id=0, deadline_seconds=1, key_token=""
                )
                await operations.claimed_operation(session, operation_id=0)
                await operations.complete_operation(session, operation_id=0, result_ref={})
                await session.rollback()
                await session.close()
        finally:
            await taken.dispose()
            runtime.give_back_engine(taken)

    # SQLAlchemy's statement log says whether each statement was compiled now or reused.
    with caplog.at_level(logging.INFO, logger="sqlalchemy.engine"):
        asyncio.run(claim_load_post())
    stats = [r.getMessage() for r in caplog.records if r.name.startswith("sqlalchemy.engine")]
    assert len([m for m in stats if "[cached since" in m]) >= 3, stats  # claim, load, post
    assert not [m for m in stats if "[generated in" in m], stats


def test_one_engine_per_process_for_one_user_at_a_time(db_url: str) -> None:
    settings = make_settings(db_url)
    first = runtime.take_engine(settings)
    second = runtime.take_engine(settings)  # while the first is in use: one of its own
    assert second is not first
    runtime.give_back_engine(second)
    runtime.give_back_engine(first)
    assert runtime.take_engine(settings) is first
    runtime.give_back_engine(first)
    other = runtime.take_engine(make_settings(db_url + "?application_name=other"))
    assert other is not first  # another database URL: another engine
    runtime.give_back_engine(other)


def test_the_engine_serves_one_event_loop_after_another(db_url: str) -> None:
    """A job, then its failure callback: each in an event loop of its own (asyncio.run)."""
    settings = make_settings(db_url)

    async def use() -> int:
        engine = runtime.take_engine(settings)
        try:
            async with engine.connect() as conn:
                return (await conn.execute(text("select 1"))).scalar_one()
        finally:
            await engine.dispose()
            runtime.give_back_engine(engine)

    assert [asyncio.run(use()) for _ in range(3)] == [1, 1, 1]


def test_warm_up_without_a_database_only_logs(caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings("postgresql://postgres@127.0.0.1:1/nowhere")
    with caplog.at_level(logging.WARNING, logger="workers.runtime"):
        runtime.warm_up(settings)
    assert "database warm-up skipped" in caplog.text
    assert not runtime._engine_in_use
