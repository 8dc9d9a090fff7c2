"""`python -m billing audit | user | adjust` as an operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import update

from billing import service
from billing.db import make_sessionmaker
from billing.models import User


def run(db_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": db_url, "ENVIRONMENT": "test"}
    return subprocess.run(
        [sys.executable, "-m", "billing", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


async def test_adjust_grants_once_per_key_and_the_audit_stays_clean(engine, db_url):
    async with make_sessionmaker(engine)() as session:
        await service.get_or_create_user(session, telegram_id=777, free_operations=4)
        await session.commit()
    args = ("adjust", "777", "--rub", "50", "--free", "1", "--reason", "ticket 42", "--key", "t42")
    first = run(db_url, *args)
    assert first.returncode == 0, first.stderr
    assert "balance 50 ₽" in first.stdout and "free operations 5 of 4" in first.stdout
    again = run(db_url, *args)
    assert again.returncode == 0 and "applied before" in again.stdout
    shown = run(db_url, "user", "777")
    assert "balance: 50 ₽" in shown.stdout
    assert run(db_url, "audit").returncode == 0


async def test_a_debit_past_the_balance_is_refused(engine, db_url):
    async with make_sessionmaker(engine)() as session:
        await service.get_or_create_user(session, telegram_id=778, free_operations=0)
        await session.commit()
    result = run(db_url, "adjust", "778", "--rub", "-5", "--reason", "dispute")
    assert result.returncode == 1 and "refused" in result.stderr
    assert run(db_url, "adjust", "999", "--rub", "5", "--reason", "x").returncode == 1


async def test_audit_exits_non_zero_and_names_the_problem(engine, db_url):
    async with make_sessionmaker(engine)() as session:
        user, _ = await service.get_or_create_user(session, telegram_id=779, free_operations=0)
        await session.execute(update(User).where(User.id == user.id).values(balance=100))
        await session.commit()
    result = run(db_url, "audit")
    assert result.returncode == 1
    assert f"user {user.id}: balance 100 != ledger sum 0" in result.stdout
    async with make_sessionmaker(engine)() as session:  # leave clean books for the fixture
        await session.execute(update(User).where(User.id == user.id).values(balance=0))
        await session.commit()
