"""`python -m billing plans list|add|edit|archive` as an operator runs it: the catalogue
changes, and bad input is refused in plain words with exit code 1 (2 for a usage error),
nothing changed."""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from billing.models import Plan


@pytest.fixture
def cli(any_engine, any_db_url, monkeypatch, billing_cli):
    monkeypatch.setenv("DATABASE_URL", any_db_url)
    return functools.partial(billing_cli, "plans")


async def _plan(sessionmaker, code: str) -> Plan | None:
    async with sessionmaker() as session:
        return await session.scalar(select(Plan).where(Plan.code == code))


async def test_list_add_edit_archive(cli, sessionmaker):
    code, out, _ = await cli("list")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["free", "pro", "pack10"]
    assert "199 ₽" in lines[1] and "30 units / month" in lines[1] and "discount 10 %" in lines[1]
    assert "[default]" in lines[0]

    code, out, err = await cli(
        "add",
        "max",
        "kind=subscription",
        "name_ru=Макс плюс",
        "name_en=Max plus",
        "price=499,90",
        "period=month",
        "units=100",
        "unlocks=generate,edit",
        "trial=7",
    )
    assert (code, err) == (0, "")
    assert out.startswith("added: max") and "499,90 ₽" in out
    plan = await _plan(sessionmaker, "max")
    assert (plan.price, plan.units, plan.unlocks, plan.trial_days, plan.name_ru) == (
        49_990,
        100,
        ["generate", "edit"],
        7,
        "Макс плюс",
    )

    code, out, _ = await cli("edit", "max", "price=399", "discount=15")
    assert code == 0 and out.startswith("saved: max")
    plan = await _plan(sessionmaker, "max")
    assert (plan.price, plan.discount_percent) == (39_900, 15)

    code, out, _ = await cli("archive", "max")
    assert code == 0 and out.startswith("archived: max")
    code, out, _ = await cli("archive", "max")
    assert code == 0 and out.startswith("already archived: max")
    code, out, _ = await cli("list")
    assert "max" not in out
    code, out, _ = await cli("list", "--all")
    assert "max" in out and "[archived]" in out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (("edit", "pro", "price=abc"), "not an amount in rubles"),
        (("edit", "pro", "units=-3"), "not a whole number"),
        (("edit", "pro", "discount=150"), "discount_percent must be from 0 to 100"),
        (("edit", "pro", "kind=package"), "kind cannot be changed"),
        (("edit", "pro", "colour=red"), "unknown field 'colour'"),
        (("edit", "pro"), "field=value is required"),
        (("edit", "nope", "price=1"), "no plan 'nope'"),
        (("edit", "free", "price=5"), "the default plan is a free subscription"),
        (("archive", "free"), "the default plan cannot be archived"),
        (("archive", "nope"), "no plan 'nope'"),
        (("add", "pro", "kind=package", "name_ru=x", "name_en=x", "price=1"), "exists already"),
        (("add", "new", "kind=package", "name_ru=x", "price=1"), "name_en is required"),
        (("add", "Bad Code", "kind=package", "name_ru=x", "name_en=x", "price=1"), "plan code"),
        (
            ("add", "p2", "kind=package", "name_ru=x", "name_en=x", "price=1", "period=day"),
            "a subscription needs a period, a package has none",
        ),
    ],
)
async def test_bad_input_is_refused_with_exit_code_1_and_nothing_changes(
    cli, sessionmaker, argv, words
):
    before = await _plan(sessionmaker, "pro")
    code, out, err = await cli(*argv)
    assert code == 1, (out, err)
    assert err.startswith("refused: ") and words in err, err
    after = await _plan(sessionmaker, "pro")
    assert (after.price, after.units, after.discount_percent, after.archived_at) == (
        before.price,
        before.units,
        before.discount_percent,
        before.archived_at,
    )
    async with sessionmaker() as session:
        codes = sorted((await session.scalars(select(Plan.code))).all())
    assert codes == ["free", "pack10", "pro"]


async def test_a_usage_error_is_exit_code_2(cli):
    code, _, err = await cli("rename", "pro")
    assert code == 2 and "invalid choice" in err
    code, _, err = await cli("edit")
    assert code == 2 and "required" in err


async def test_the_command_line_itself(engine, db_url):
    env = {**os.environ, "DATABASE_URL": db_url, "ENVIRONMENT": "test"}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "billing", "plans", "edit", "pack10", "expires=never", "units=12"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "12 units, never expires" in result.stdout
