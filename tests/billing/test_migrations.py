"""The migrations build the models' schema, down and up again, on both databases."""

from __future__ import annotations

import asyncio
import os

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from alembic import command
from billing.db import make_engine
from billing.models import Base
from tests.conftest import PG_ADMIN_URL, _pg_url, alembic_config


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_db(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    # Of this test process alone: another run on the same server (a second checkout, CI)
    # would otherwise drop it in the middle of this one's migrations.
    name = f"medialab_migrations_test_{os.getpid()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _pg_url(name)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _diff(url: str) -> list:
    async def run() -> list:
        engine = make_engine(url, pool_size=1)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync, opts={"compare_type": True}),
                        Base.metadata,
                    )
                )
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _tables(url: str) -> set[str]:
    async def run() -> set[str]:
        from sqlalchemy import inspect

        engine = make_engine(url, pool_size=1)
        try:
            async with engine.connect() as conn:
                return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_upgrade_downgrade_upgrade_leaves_no_difference_from_the_models(empty_db):
    config = alembic_config(empty_db)
    command.upgrade(config, "head")
    assert _diff(empty_db) == []
    command.downgrade(config, "base")
    assert _tables(empty_db) <= {"alembic_version"}
    command.upgrade(config, "head")
    assert _diff(empty_db) == []
    assert {"users", "payments", "operations", "ledger_entries", "payment_notices"} <= _tables(
        empty_db
    )
