"""The ledger is append-only in the database (migration 0003's triggers), not by convention:
an UPDATE, a DELETE (and on PostgreSQL a TRUNCATE) of a ledger row fails and changes
nothing, on both databases; the billing service still appends its rows; a downgrade to 0002
removes the triggers and upgrading again restores them."""

from __future__ import annotations

import asyncio
import os
import sqlite3

import psycopg
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from alembic import command
from billing import accounts, operations, payments
from billing.db import make_engine, make_sessionmaker
from billing.models import LedgerEntry
from tests.billing.helpers import charge_once, new_payment, new_user
from tests.conftest import PG_ADMIN_URL, _pg_url, alembic_config, make_settings

REFUSAL = "ledger_entries is append-only"


async def _rows(engine: AsyncEngine) -> list[tuple]:
    async with engine.connect() as conn:
        result = await conn.execute(
            select(
                LedgerEntry.id,
                LedgerEntry.user_id,
                LedgerEntry.kind,
                LedgerEntry.amount,
                LedgerEntry.free_delta,
                LedgerEntry.balance_after,
                LedgerEntry.free_after,
                LedgerEntry.operation_id,
                LedgerEntry.payment_id,
                LedgerEntry.idempotency_key,
            ).order_by(LedgerEntry.id)
        )
        return [tuple(row) for row in result]


async def _refused(engine: AsyncEngine, statement: str, **params: object) -> str:
    """Run ``statement`` in a transaction of its own; the database's error text."""
    with pytest.raises(DBAPIError) as info:
        async with engine.begin() as conn:
            await conn.execute(text(statement), params)
    return str(info.value.orig)


async def test_update_and_delete_of_a_ledger_row_are_refused_and_change_nothing(
    any_engine, any_db_url
):
    settings = make_settings(any_db_url)
    sm = make_sessionmaker(any_engine)
    user_id = await new_user(sm, balance=5000)
    await charge_once(sm, settings, user_id)
    before = await _rows(any_engine)
    assert [row[2] for row in before] == ["adjustment", "charge"]
    entry_id = before[-1][0]

    for statement in (
        "UPDATE ledger_entries SET amount = 0, free_delta = 1 WHERE id = :id",
        "UPDATE ledger_entries SET balance_after = balance_after + 100000",
        "DELETE FROM ledger_entries WHERE id = :id",
        "DELETE FROM ledger_entries",
    ):
        error = await _refused(any_engine, statement, id=entry_id)
        assert REFUSAL in error, (statement, error)
        verb = statement.split()[0]
        assert f"{verb} refused" in error, (statement, error)
        assert await _rows(any_engine) == before, statement

    if any_db_url.startswith("postgresql"):
        error = await _refused(any_engine, "TRUNCATE ledger_entries CASCADE")
        assert f"{REFUSAL}: TRUNCATE refused" in error
        assert await _rows(any_engine) == before


async def test_the_billing_service_only_appends(any_engine, any_db_url):
    """A charge (free and paid), a refund, a credit and an adjustment each add their row,
    and every row they added is then as fixed as the others."""
    settings = make_settings(any_db_url)
    sm = make_sessionmaker(any_engine)
    user_id = await new_user(sm, free=1, balance=3000)
    free = await charge_once(sm, settings, user_id)
    paid = await charge_once(sm, settings, user_id, op_type="retouch")
    assert (free.funding, paid.funding) == ("free", "balance")
    payment = await new_payment(sm, user_id, 10_000)
    async with sm() as session:
        assert await operations.refund_operation(session, operation_id=paid.operation_id)
        assert await payments.credit_payment(
            session, payment_id=payment.id, amount=10_000, currency="RUB"
        )
        await accounts.adjust(session, user_id=user_id, amount=-500, reason="test debit")
        await session.commit()
        balance = (await accounts.get_user(session, user_id=user_id)).balance
    assert balance == 3000 + 10_000 - 500

    rows = await _rows(any_engine)
    assert [row[2] for row in rows] == [
        "signup",
        "adjustment",
        "charge",
        "charge",
        "refund",
        "topup",
        "adjustment",
    ]
    for row in rows:
        error = await _refused(
            any_engine, "UPDATE ledger_entries SET amount = amount WHERE id = :id", id=row[0]
        )
        assert REFUSAL in error
    assert await _rows(any_engine) == rows


# --- the migration --------------------------------------------------------------------


@pytest.fixture(params=["postgresql", "sqlite"])
def migrated_db(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'append_only.db'}"
        return
    name = f"medialab_append_only_{os.getpid()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _pg_url(name)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _execute(url: str, statement: str) -> None:
    """One statement in a transaction of its own, through the plain driver."""
    if url.startswith("postgresql"):
        with psycopg.connect(url) as conn:
            conn.execute(statement)
        return
    conn = sqlite3.connect(url.split("///", 1)[1])
    try:
        with conn:
            conn.execute(statement)
    finally:
        conn.close()


def _amounts(url: str) -> list[int]:
    if url.startswith("postgresql"):
        with psycopg.connect(url) as conn:
            return [r[0] for r in conn.execute("SELECT amount FROM ledger_entries ORDER BY id")]
    conn = sqlite3.connect(url.split("///", 1)[1])
    try:
        return [r[0] for r in conn.execute("SELECT amount FROM ledger_entries ORDER BY id")]
    finally:
        conn.close()


def _refused_sync(url: str, statement: str) -> str:
    with pytest.raises((psycopg.Error, sqlite3.Error)) as info:
        _execute(url, statement)
    return str(info.value)


def test_downgrade_removes_the_triggers_and_upgrade_restores_them(migrated_db):
    url = migrated_db
    config = alembic_config(url)
    command.upgrade(config, "head")

    async def some_entries() -> None:
        engine = make_engine(url, pool_size=1)
        try:
            sm = make_sessionmaker(engine)
            user_id = await new_user(sm, balance=1000)
            await new_user(sm, telegram_id=1002, balance=2000)
            async with sm() as session:
                await accounts.adjust(session, user_id=user_id, amount=5, reason="test")
                await session.commit()
        finally:
            await engine.dispose()

    asyncio.run(some_entries())
    assert _amounts(url) == [1000, 2000, 5]
    assert REFUSAL in _refused_sync(url, "UPDATE ledger_entries SET amount = 7 WHERE amount = 5")

    command.downgrade(config, "0002")
    _execute(url, "UPDATE ledger_entries SET amount = 7 WHERE amount = 5")
    _execute(url, "DELETE FROM ledger_entries WHERE amount = 2000")
    assert _amounts(url) == [1000, 7]

    command.upgrade(config, "head")
    assert REFUSAL in _refused_sync(url, "UPDATE ledger_entries SET amount = 5 WHERE amount = 7")
    assert REFUSAL in _refused_sync(url, "DELETE FROM ledger_entries")
    if url.startswith("postgresql"):
        assert REFUSAL in _refused_sync(url, "TRUNCATE ledger_entries CASCADE")
    assert _amounts(url) == [1000, 7]
