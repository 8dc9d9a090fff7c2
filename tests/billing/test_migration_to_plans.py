"""Existing users after migration 0004 (plans): the same balance, the same free operations,
on the default plan; their books still audit clean and they charge as before. Both
databases, from a database at 0003 that holds users, operations and their ledger."""

from __future__ import annotations

import asyncio
import os
import sqlite3

import psycopg
import pytest
from sqlalchemy import func, select

from alembic import command
from billing import operations
from billing.audit import audit
from billing.db import make_engine, make_sessionmaker
from billing.models import Operation, Plan, User, UserPlan
from tests.conftest import PG_ADMIN_URL, _pg_url, alembic_config, make_settings

# Two users as 0003 left them: A signed up with 4 free operations, was given 60 ₽, used a
# free operation, paid 10 ₽ for another, got a free one back after a failure; B only
# signed up. (id, user, kind, amount, free_delta, balance_after, free_after, op, key)
USERS = [(1, 111, 5000, 3, 4), (2, 222, 0, 4, 4)]  # id, telegram, balance, free, granted
OPERATIONS = [  # id, user, type, price, funding, status
    (1, 1, "upscale", 0, "free", "succeeded"),
    (2, 1, "retouch", 1000, "balance", "succeeded"),
    (3, 1, "edit", 0, "free", "refunded"),
    (4, 1, "add_text", 0, "none", "succeeded"),
]
ENTRIES = [
    (1, 1, "signup", 0, 4, 0, 4, None, "signup:1"),
    (2, 2, "signup", 0, 4, 0, 4, None, "signup:2"),
    (3, 1, "adjustment", 6000, 0, 6000, 4, None, "adjust:1"),
    (4, 1, "charge", 0, -1, 6000, 3, 1, "charge:1"),
    (5, 1, "charge", -1000, 0, 5000, 3, 2, "charge:2"),
    (6, 1, "charge", 0, -1, 5000, 2, 3, "charge:3"),
    (7, 1, "refund", 0, 1, 5000, 3, 3, "refund:3"),
]


@pytest.fixture(params=["postgresql", "sqlite"])
def old_db(request, tmp_path):
    """A database at revision 0003 holding the rows above."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'at_0003.db'}"
    else:
        # the process's own: two test runs on one server (a developer's and CI's) must not
        # drop each other's database
        name = f"medialab_migration_0004_test_{os.getpid()}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        url = _pg_url(name)
    command.upgrade(alembic_config(url), "0003")
    statements = [
        (
            "INSERT INTO users (id, telegram_id, balance, free_operations_left, "
            "free_operations_granted) VALUES (?, ?, ?, ?, ?)",
            USERS,
        ),
        (
            "INSERT INTO operations (id, user_id, type, price, funding, status, attempts) "
            "VALUES (?, ?, ?, ?, ?, ?, 0)",
            OPERATIONS,
        ),
        (
            "INSERT INTO ledger_entries (id, user_id, kind, amount, free_delta, balance_after, "
            "free_after, operation_id, idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ENTRIES,
        ),
    ]
    if url.startswith("postgresql"):
        with psycopg.connect(url, autocommit=True) as conn:
            for sql, rows in statements:
                with conn.cursor() as cursor:
                    cursor.executemany(sql.replace("?", "%s"), rows)
            for table in ("users", "operations", "ledger_entries"):
                conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
    else:
        conn = sqlite3.connect(url.split("///", 1)[1])
        for sql, rows in statements:
            conn.executemany(sql, rows)
        conn.commit()
        conn.close()
    yield url
    if url.startswith("postgresql"):
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_existing_users_keep_their_balance_and_free_operations_on_the_default_plan(old_db):
    url = old_db
    config = alembic_config(url)
    command.upgrade(config, "head")

    async def check() -> None:
        engine = make_engine(url, pool_size=2)
        try:
            sm = make_sessionmaker(engine)
            async with sm() as session:
                users = (await session.execute(select(User).order_by(User.id))).scalars().all()
                assert [(u.id, u.balance, u.free_operations_left) for u in users] == [
                    (1, 5000, 3),
                    (2, 0, 4),
                ]
                assert [(u.confirm_charges, u.free_renewed_at) for u in users] == [
                    (None, None)
                ] * 2
                # on the default plan: no holding at all
                assert await session.scalar(select(func.count()).select_from(UserPlan)) == 0
                default = await session.scalar(select(Plan).where(Plan.is_default))
                assert (default.code, default.price, default.units) == ("free", 0, 0)
                ops = (await session.execute(select(Operation).order_by(Operation.id))).scalars()
                assert [(o.funding, o.units, o.holding_id, o.period_no) for o in ops] == [
                    ("free", 0, None, None),
                    ("balance", 0, None, None),
                    ("free", 0, None, None),
                    ("none", 0, None, None),
                ]
                assert await audit(session) == []

            settings = make_settings(url)
            async with sm() as session:  # they charge as before: free first, then money
                for _ in range(3):
                    charged = await operations.charge(
                        session, settings, user_id=1, op_type="upscale"
                    )
                    assert charged.funding == "free"
                charged = await operations.charge(session, settings, user_id=1, op_type="edit")
                assert (charged.funding, charged.price, charged.balance_after) == (
                    "balance",
                    1000,
                    4000,
                )
                back = await operations.refund_operation(
                    session, operation_id=charged.operation_id
                )
                assert (back.amount, back.balance_after) == (1000, 5000)
                await session.commit()
            async with sm() as session:
                assert await audit(session) == []
        finally:
            await engine.dispose()

    asyncio.run(check())

    # and back: the downgrade keeps the books (nothing was paid from a plan)
    command.downgrade(config, "0003")
    if url.startswith("postgresql"):
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT balance, free_operations_left FROM users ORDER BY id")
            assert rows.fetchall() == [(5000, 0), (0, 4)]
    else:
        conn = sqlite3.connect(url.split("///", 1)[1])
        try:
            rows = conn.execute("SELECT balance, free_operations_left FROM users ORDER BY id")
            assert rows.fetchall() == [(5000, 0), (0, 4)]
            assert {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            } >= {
                "ledger_entries_no_update",
                "ledger_entries_no_delete",
            }
        finally:
            conn.close()
