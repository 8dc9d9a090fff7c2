"""`python -m billing audit | user | adjust` as an operator runs them: in this process
(``billing_cli``), and one real ``python -m billing`` for the entry point and its exit code."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from billing import accounts
from billing.db import make_sessionmaker
from billing.models import LedgerEntry, User


@pytest.fixture
def run(db_url, monkeypatch, billing_cli):
    monkeypatch.setenv("DATABASE_URL", db_url)
    return billing_cli


async def test_adjust_grants_once_per_key_and_the_audit_stays_clean(engine, run):
    async with make_sessionmaker(engine)() as session:
        await accounts.get_or_create_user(session, telegram_id=777, free_operations=4)
        await session.commit()
    args = ("adjust", "777", "--rub", "50", "--free", "1", "--reason", "ticket 42", "--key", "t42")
    code, out, err = await run(*args)
    assert code == 0, err
    assert "balance 50 ₽" in out and "free operations 5 of 4" in out
    code, out, _ = await run(*args)
    assert code == 0 and "applied before" in out
    code, out, _ = await run("user", "777")
    assert "balance: 50 ₽" in out
    assert (await run("audit"))[0] == 0


async def test_a_debit_past_the_balance_is_refused(engine, run):
    async with make_sessionmaker(engine)() as session:
        await accounts.get_or_create_user(session, telegram_id=778, free_operations=0)
        await session.commit()
    code, _, err = await run("adjust", "778", "--rub", "-5", "--reason", "dispute")
    assert code == 1 and "refused" in err
    assert (await run("adjust", "999", "--rub", "5", "--reason", "x"))[0] == 1


async def test_audit_exits_non_zero_and_names_the_problem(engine, db_url):
    """The real ``python -m billing``: its exit code is what a cron job or a script reads."""
    async with make_sessionmaker(engine)() as session:
        user, _ = await accounts.get_or_create_user(session, telegram_id=779, free_operations=0)
        await session.execute(update(User).where(User.id == user.id).values(balance=100))
        await session.commit()
    env = {**os.environ, "DATABASE_URL": db_url, "ENVIRONMENT": "test"}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "billing", "audit"],
        env=env,
        cwd=Path(__file__).parent,  # no .env of a developer's
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 1
    assert f"user {user.id}: balance 100 != ledger sum 0" in result.stdout
    async with make_sessionmaker(engine)() as session:  # leave clean books for the fixture
        await session.execute(update(User).where(User.id == user.id).values(balance=0))
        await session.commit()


HOSTILE = [
    (("adjust", "780", "--rub", "92233720368547758.07"), "out of range"),
    (("adjust", "780", "--rub", "99999999999999999999"), "out of range"),
    (("adjust", "780", "--rub", "100000.01"), "out of range"),  # ADMIN_ADJUST_MAX_RUB
    (("adjust", "780", "--rub", "-100000.01"), "out of range"),
    (("adjust", "780", "--rub", "1e17"), "not an amount"),
    (("adjust", "780", "--rub", "NaN"), "not an amount"),
    (("adjust", "780", "--rub", "inf"), "not an amount"),
    (("adjust", "780", "--rub", "١٠٠"), "not an amount"),
    (("adjust", "780", "--rub", "1.005"), "two decimal places"),
    (("adjust", "780", "--free", "99999999999"), "out of range"),
    (("adjust", "99999999999999999999", "--rub", "5"), "not a Telegram id"),
    (("adjust", "٧٨٠", "--rub", "5"), "not a Telegram id"),
    (("adjust", "780", "--rub", "5", "--admin-id", "99999999999999999999"), "not a Telegram id"),
    (("user", "99999999999999999999"), "not a Telegram id"),
    # Not a number, but from outside all the same: past the ledger's key column it was a
    # database error with a traceback.
    (("adjust", "780", "--rub", "5", "--key", "k" * 122), "a key of 1 to 121 characters"),
    (("adjust", "780", "--rub", "5", "--key", " "), "a key of 1 to 121 characters"),
]


@pytest.mark.parametrize(("args", "answer"), HOSTILE)
async def test_a_hostile_number_gets_a_plain_answer_and_changes_nothing(engine, run, args, answer):
    async with make_sessionmaker(engine)() as session:
        await accounts.get_or_create_user(session, telegram_id=780, free_operations=0)
        await session.commit()
    extra = ("--reason", "hostile") if args[0] == "adjust" else ()
    code, out, err = await run(*args, *extra)
    assert code in (1, 2), out
    assert answer in err
    assert "Traceback" not in err + out
    async with make_sessionmaker(engine)() as session:
        assert await session.scalar(select(func.count()).select_from(LedgerEntry)) == 0
        assert await session.scalar(select(User.balance).where(User.telegram_id == 780)) == 0


async def test_the_operators_limit_is_configured(engine, run, monkeypatch):
    async with make_sessionmaker(engine)() as session:
        await accounts.get_or_create_user(session, telegram_id=781, free_operations=0)
        await session.commit()
    monkeypatch.setenv("ADMIN_ADJUST_MAX_RUB", "50")
    code, _, err = await run("adjust", "781", "--rub", "50.01", "--reason", "x")
    assert code == 1 and "at most 50 ₽ (ADMIN_ADJUST_MAX_RUB)" in err
    code, out, _ = await run("adjust", "781", "--rub", "50", "--reason", "x")
    assert code == 0 and "balance 50 ₽" in out
