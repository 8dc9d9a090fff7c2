"""`python -m billing audit | user | adjust` as an operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import func, select, update

from billing import accounts
from billing.db import make_sessionmaker
from billing.models import LedgerEntry, User


def run(db_url: str, *args: str, **extra_env: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": db_url, "ENVIRONMENT": "test", **extra_env}
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
        await accounts.get_or_create_user(session, telegram_id=777, free_operations=4)
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
        await accounts.get_or_create_user(session, telegram_id=778, free_operations=0)
        await session.commit()
    result = run(db_url, "adjust", "778", "--rub", "-5", "--reason", "dispute")
    assert result.returncode == 1 and "refused" in result.stderr
    assert run(db_url, "adjust", "999", "--rub", "5", "--reason", "x").returncode == 1


async def test_audit_exits_non_zero_and_names_the_problem(engine, db_url):
    async with make_sessionmaker(engine)() as session:
        user, _ = await accounts.get_or_create_user(session, telegram_id=779, free_operations=0)
        await session.execute(update(User).where(User.id == user.id).values(balance=100))
        await session.commit()
    result = run(db_url, "audit")
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
async def test_a_hostile_number_gets_a_plain_answer_and_changes_nothing(
    engine, db_url, args, answer
):
    async with make_sessionmaker(engine)() as session:
        await accounts.get_or_create_user(session, telegram_id=780, free_operations=0)
        await session.commit()
    extra = ("--reason", "hostile") if args[0] == "adjust" else ()
    result = run(db_url, *args, *extra)
    assert result.returncode in (1, 2), result.stdout
    assert answer in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    async with make_sessionmaker(engine)() as session:
        assert await session.scalar(select(func.count()).select_from(LedgerEntry)) == 0
        assert await session.scalar(select(User.balance).where(User.telegram_id == 780)) == 0


async def test_the_operators_limit_is_configured(engine, db_url):
    async with make_sessionmaker(engine)() as session:
        await accounts.get_or_create_user(session, telegram_id=781, free_operations=0)
        await session.commit()
    refused = run(
        db_url, "adjust", "781", "--rub", "50.01", "--reason", "x", ADMIN_ADJUST_MAX_RUB="50"
    )
    assert refused.returncode == 1 and "at most 50 ₽ (ADMIN_ADJUST_MAX_RUB)" in refused.stderr
    done = run(db_url, "adjust", "781", "--rub", "50", "--reason", "x", ADMIN_ADJUST_MAX_RUB="50")
    assert done.returncode == 0 and "balance 50 ₽" in done.stdout
