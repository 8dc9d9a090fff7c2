"""Charges per second and latency on PostgreSQL, against a single-row UPDATE baseline.

    .venv/bin/python bench/charge.py [--seconds 5] [--concurrency 1,16,64] [--rounds 1]
    .venv/bin/python bench/charge.py --plans-only --concurrency 16 --rounds 3
    .venv/bin/python bench/charge.py --signups-only --concurrency 1

Each concurrent "user" charges its own account in a loop: the full transaction the bot runs
(duplicate check by request key, conditional debit, operation row, ledger entry, commit).
The baselines run in the same process against the same database:
  * cte-today: the charge as it was before issue 13 (a PostgreSQL-only text() CTE, copied
    below as the reference, not used by the project), next to the project's ``charge``;
  * sql-loop: the same client stack (SQLAlchemy + asyncpg) doing only
    ``UPDATE users SET balance = balance - 1 WHERE id = :id AND balance >= 1`` per transaction;
  * pgbench: the same UPDATE from pgbench's C client, when pgbench is installed;
  * plain: the charge chain as it was before plans (issue 14), copied below (``plain_chain``)
    and run through the same ``billing.ledger.Chain`` — the baseline of the charge with
    plans, beside it in the same run:
  * plans-bal: the project's ``charge`` for a user who holds no plan (paying from the
    balance through the plans' chain: subscription, package, discount, access, roll-over
    check in its first step);
  * plans-sub: the project's ``charge`` for a user paying from a subscription's quota (the
    quota chain: the subscription paid this user's last charge);
  * sub-whole: the same with that hint dropped before each charge (the whole chain);
  * sub-floor: the least a quota charge can write in this design (``quota_floor_chain``:
    lock the user, take the units from the live subscription, the operation, the entry) —
    the ceiling of plans-sub: a quota charge writes one row more than a balance charge.
A chain run once (a signup) is measured apart: as a Core statement and as text (``signups``).
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import JSON, Integer, and_, bindparam, case, false, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alembic.config import Config  # noqa: E402

from alembic import command  # noqa: E402
from billing import accounts, ledger, operations, plans  # noqa: E402
from billing.db import make_engine, make_sessionmaker  # noqa: E402
from billing.errors import DuplicateRequest, InsufficientFunds  # noqa: E402
from billing.models import (  # noqa: E402
    Funding,
    LedgerKind,
    Operation,
    OperationStatus,
    User,
    UserPlan,
    new_key_token,
    utcnow,
)
from billing.operations import ChargeResult  # noqa: E402
from billing.prices import operation_type, price_for  # noqa: E402
from billing.settings import Settings, operation_deadline_seconds  # noqa: E402

ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
DB = "medialab_bench"


def db_url() -> str:
    base = ADMIN.rsplit("/", 1)[0]
    return f"{base}/{DB}"


BENCH_PLAN = "bench_sub"  # a subscription with a quota no run exhausts


def prepare(users: int) -> None:
    """Users 1..users with money (the plain and balance runs), users+1..2*users with a
    subscription of a million units each (the quota run)."""
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB}"')
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.attributes["url"] = db_url()
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")

    async def seed() -> None:
        settings = Settings(_env_file=None, DATABASE_URL=db_url())  # type: ignore[call-arg]
        engine = make_engine(db_url(), pool_size=2)
        async with make_sessionmaker(engine)() as session:
            await plans.add_plan(
                session,
                code=BENCH_PLAN,
                kind="subscription",
                name_ru="Бенчмарк",
                name_en="Benchmark",
                price=100,
                period="year",
                units=1_000_000,
            )
            for i in range(2 * users):
                user, _ = await accounts.get_or_create_user(
                    session, telegram_id=10_000 + i, free_operations=0
                )
                await accounts.adjust(
                    session, user_id=user.id, amount=10**12, reason="benchmark money"
                )
                if i >= users:
                    await plans.buy_plan_from_balance(
                        session,
                        settings,
                        user_id=user.id,
                        plan_code=BENCH_PLAN,
                        request_key=f"bench:{user.id}",
                    )
            await session.commit()
        await engine.dispose()

    asyncio.run(seed())


# --- REFERENCE ONLY: the charge before issue 13 (billing/service.py at 48701a1) -----------
# A PostgreSQL-only text() CTE, kept here to measure the project's one charge against it in
# the same run. Nothing in the project calls it.
# On PostgreSQL the whole charge is one statement, one round trip: lock the user row, take a
# free operation if one is left else the price if the balance covers it, write the operation
# (ON CONFLICT on the request key: a re-delivered update inserts nothing) and its ledger
# entry. The FOR UPDATE re-reads the row a concurrent charge just committed, so the decision
# is made on the newest balance; no row comes back when the user cannot pay.
_CHARGE_SQL = text(
    """
WITH old AS (
    SELECT id, free_operations_left AS free, balance FROM users WHERE id = :user_id FOR UPDATE
), debit AS (
    UPDATE users
    SET free_operations_left = users.free_operations_left
            - CASE WHEN old.free > 0 THEN 1 ELSE 0 END,
        balance = users.balance - CASE WHEN old.free > 0 THEN 0 ELSE :price END,
        updated_at = now()
    FROM old
    WHERE users.id = old.id AND (old.free > 0 OR old.balance >= :price)
    RETURNING users.id, users.balance, users.free_operations_left, old.free > 0 AS used_free
), op AS (
    INSERT INTO operations (user_id, type, price, funding, status, request_key, chat_id,
                            input_ref, deadline_at, attempts, created_at, updated_at)
    SELECT debit.id, :kind, CASE WHEN used_free THEN 0 ELSE :price END,
           CASE WHEN used_free THEN 'free' ELSE 'balance' END, 'queued', :request_key,
           :chat_id, CAST(:input_ref AS json), now() + make_interval(secs => :deadline), 0,
           now(), now()
    FROM debit
    ON CONFLICT (request_key) DO NOTHING
    RETURNING id, price, funding, key_token
), entry AS (
    INSERT INTO ledger_entries (user_id, kind, amount, free_delta, balance_after, free_after,
                                operation_id, idempotency_key, created_at)
    SELECT debit.id, 'charge', -op.price, CASE WHEN op.funding = 'free' THEN -1 ELSE 0 END,
           debit.balance, debit.free_operations_left, op.id, 'charge:' || op.id, now()
    FROM debit, op
    RETURNING id
)
SELECT debit.balance, debit.free_operations_left, op.id AS operation_id, op.price, op.funding,
       op.key_token
FROM debit LEFT JOIN op ON true
"""
)


async def reference_charge(
    session: AsyncSession,
    settings: Settings,
    *,
    user_id: int,
    kind: str,
    price: int,
    request_key: str | None,
    chat_id: int | None,
    input_ref: dict[str, Any] | None,
) -> ChargeResult:
    row = (
        await session.execute(
            _CHARGE_SQL,
            {
                "user_id": user_id,
                "price": price,
                "kind": kind,
                "request_key": request_key,
                "chat_id": chat_id,
                "input_ref": json.dumps(input_ref) if input_ref is not None else None,
                "deadline": float(operation_deadline_seconds(settings, queued=True)),
            },
        )
    ).one_or_none()
    if row is None or row.operation_id is None:
        # Nothing paid, or paid twice for one update: a re-delivery is a duplicate (roll back),
        # not a reason to show a re-delivering user the top-up screen.
        existing = None
        if request_key is not None:
            existing = await session.scalar(
                select(Operation.id).where(Operation.request_key == request_key)
            )
        if existing is not None or row is not None:
            raise DuplicateRequest(request_key or "", existing)
        user = await accounts.get_user(session, user_id=user_id)
        raise InsufficientFunds(
            price=price,
            balance=user.balance,
            free_left=user.free_left,
            free_granted=user.free_granted,
        )
    return ChargeResult(
        operation_id=row.operation_id,
        user_id=user_id,
        op_type=kind,
        price=row.price,
        funding=Funding(row.funding),
        balance_after=row.balance,
        free_after=row.free_operations_left,
        key_token=row.key_token,
    )


# --- REFERENCE ONLY: the charge chain before plans (billing/operations.py at ca2f957) -------
# Free operation or balance, nothing else: the baseline the charge with plans is measured
# against in the same run. Nothing in the project calls it.
_users = User.__table__
_operations = Operation.__table__


def plain_chain(dialect: str, *, paid: bool) -> ledger.Chain:
    price = bindparam("price", type_=_users.c.balance.type)

    def old(_: Any) -> Any:
        return (
            select(
                _users.c.id,
                _users.c.free_operations_left.label("free"),
                _users.c.balance,
                _users.c.free_operations_granted.label("granted"),
            )
            .where(_users.c.id == bindparam("user_id", type_=_users.c.id.type))
            .with_for_update()
        )

    def debit(p: Any) -> Any:
        was = p["old"]
        zero, one = ledger.const(0), ledger.const(1)
        take_free = was.free > zero if paid else false()
        return ledger.balance_step(
            was.id,
            amount=-case((take_free, zero), else_=price),
            free_delta=-case((take_free, one), else_=zero),
            conditions=(take_free | (was.balance >= price),) if paid else (),
        ).returning(take_free.label("used_free"))

    def operation(p: Any) -> Any:
        debited = p["debit"]
        funding = Funding.BALANCE if paid else Funding.NONE
        c = _operations.c
        values = {
            "user_id": debited.id,
            "type": bindparam("kind", type_=c.type.type),
            "price": case((debited.used_free, ledger.const(0)), else_=price),
            "funding": case(
                (debited.used_free, ledger.const(Funding.FREE.value)),
                else_=ledger.const(funding.value),
            ),
            "status": ledger.const(OperationStatus.QUEUED.value),
            "request_key": bindparam("request_key", type_=c.request_key.type),
            "chat_id": bindparam("chat_id", type_=c.chat_id.type),
            "input_ref": bindparam("input_ref", type_=JSON(none_as_null=True)),
            "deadline_at": bindparam("deadline_at", type_=c.deadline_at.type),
            "attempts": ledger.const(0),
            "key_token": bindparam("key_token", type_=c.key_token.type),
        }
        return (
            ledger.insert_or_skip(dialect, c.request_key)
            .from_select(
                list(values),
                select(*(v.label(k) for k, v in values.items())),
                include_defaults=False,
            )
            .returning(c.id, c.user_id, c.price, c.funding, c.key_token)
        )

    def entry(p: Any) -> Any:
        op = p["operation"]
        return ledger.entry(
            p["debit"],
            kind=LedgerKind.CHARGE,
            amount=-op.price,
            free_delta=case(
                (op.funding == ledger.const(Funding.FREE.value), ledger.const(-1)),
                else_=ledger.const(0),
            ),
            key=ledger.key_of("charge:", op.id),
            operation_id=op.id,
            where=and_(
                op.user_id == p["debit"].id, op.funding != ledger.const(Funding.NONE.value)
            ),
        )

    return ledger.Chain(
        ledger.Step("old", old),
        ledger.Step("debit", debit),
        ledger.Step("operation", operation),
        ledger.Step("entry", entry),
    )


_PLAIN = plain_chain("postgresql", paid=True)


def quota_floor_chain(dialect: str) -> ledger.Chain:
    """The least a quota charge can do in this design, the floor of ``plans-sub``: lock
    the user's row and read their live subscription in the same SELECT (no free
    operations, no packages, no discount, no access, no roll-over check), take the units
    by a conditional UPDATE of the holding, write the operation and its ledger entry."""
    holdings, units = UserPlan.__table__, bindparam("op_units", type_=Integer)
    now = bindparam("now", type_=holdings.c.ends_at.type)

    def old(_: Any) -> Any:
        h = holdings
        return (
            select(
                _users.c.id,
                _users.c.balance,
                _users.c.free_operations_left,
                h.c.id.label("holding"),
                h.c.period_no,
            )
            .select_from(_users.join(h, h.c.user_id == _users.c.id))
            .where(
                _users.c.id == bindparam("for_user", type_=_users.c.id.type),
                h.c.status == ledger.const("active"),
                h.c.kind == ledger.const("subscription"),
                h.c.units_left >= units,
                or_(h.c.ends_at.is_(None), h.c.ends_at > now),
            )
            .with_for_update(of=_users)
        )

    def held(p: Any) -> Any:
        was, h = p["old"], holdings
        return (
            update(h)
            .where(h.c.id == was.holding, h.c.units_left >= units, h.c.period_no == was.period_no)
            .values(units_left=h.c.units_left - units)
            .returning(h.c.id, h.c.user_id, h.c.units_left, h.c.period_no)
        )

    def operation(p: Any) -> Any:
        was, took = p["old"], p["held"]
        c = _operations.c
        values = {
            "user_id": was.id,
            "type": bindparam("op_kind", type_=c.type.type),
            "price": ledger.const(0),
            "funding": ledger.const(Funding.SUBSCRIPTION.value),
            "status": ledger.const(OperationStatus.QUEUED.value),
            "request_key": bindparam("request_key", type_=c.request_key.type),
            "chat_id": bindparam("chat_id", type_=c.chat_id.type),
            "input_ref": bindparam("input_ref", type_=JSON(none_as_null=True)),
            "deadline_at": bindparam("deadline_at", type_=c.deadline_at.type),
            "attempts": ledger.const(0),
            "key_token": bindparam("key_token", type_=c.key_token.type),
            "holding_id": took.id,
            "units": units,
            "period_no": took.period_no,
        }
        return (
            ledger.insert_or_skip(dialect, c.request_key)
            .from_select(
                list(values),
                select(*(v.label(k) for k, v in values.items())).where(took.user_id == was.id),
                include_defaults=False,
            )
            .returning(c.id, c.user_id, c.price, c.funding, c.key_token, c.holding_id, c.units)
        )

    def entry(p: Any) -> Any:
        was, op, took = p["old"], p["operation"], p["held"]
        return ledger.entry(
            was,
            kind=LedgerKind.CHARGE,
            amount=ledger.const(0),
            free_delta=ledger.const(0),
            units_delta=-op.units,
            units_after=took.units_left,
            holding_id=op.holding_id,
            key=ledger.key_of("charge:", op.id),
            operation_id=op.id,
            where=and_(op.user_id == was.id, took.id == op.holding_id),
        )

    return ledger.Chain(
        ledger.Step("old", old),
        ledger.Step("held", held),
        ledger.Step("operation", operation),
        ledger.Step("entry", entry),
    )


_QUOTA_FLOOR = quota_floor_chain("postgresql")


async def quota_floor_charge(
    session: AsyncSession, settings: Settings, *, user_id: int, request_key: str, chat_id: int
) -> ChargeResult:
    """A quota charge by ``quota_floor_chain`` (the plans-sub users)."""
    kind = operation_type("upscale").value
    deadline_at = utcnow() + timedelta(seconds=operation_deadline_seconds(settings, queued=True))
    rows = await _QUOTA_FLOOR.run(
        session,
        for_user=user_id,
        op_units=1,
        now=utcnow(),
        op_kind=kind,
        request_key=request_key,
        chat_id=chat_id,
        input_ref=None,
        deadline_at=deadline_at,
        key_token=new_key_token(),
    )
    op, took = rows["operation"], rows["held"]
    if op is None or took is None:
        raise InsufficientFunds(price=0, balance=0, free_left=0)
    return ChargeResult(
        operation_id=op.id,
        user_id=user_id,
        op_type=kind,
        price=op.price,
        funding=Funding(op.funding),
        balance_after=rows["old"].balance,
        free_after=rows["old"].free_operations_left,
        key_token=op.key_token,
        units=op.units,
        holding_id=op.holding_id,
        units_after=took.units_left,
    )


async def plain_charge(
    session: AsyncSession, settings: Settings, *, user_id: int, request_key: str, chat_id: int
) -> ChargeResult:
    """The pre-plans ``charge`` (the money path: price from the balance, else refused)."""
    kind = operation_type("upscale").value
    price = price_for(kind, settings)
    deadline_at = utcnow() + timedelta(seconds=operation_deadline_seconds(settings, queued=True))
    rows = await _PLAIN.run(
        session,
        user_id=user_id,
        price=price,
        kind=kind,
        request_key=request_key,
        chat_id=chat_id,
        input_ref=None,
        deadline_at=deadline_at,
        key_token=new_key_token(),
    )
    paid, op = rows["debit"], rows["operation"]
    if paid is None or op is None:
        raise InsufficientFunds(price=price, balance=0, free_left=0)
    return ChargeResult(
        operation_id=op.id,
        user_id=user_id,
        op_type=kind,
        price=op.price,
        funding=Funding(op.funding),
        balance_after=paid.balance,
        free_after=paid.free_operations_left,
        key_token=op.key_token,
    )


def summarize(name: str, concurrency: int, latencies: list[float], seconds: float) -> dict:
    latencies.sort()
    n = len(latencies)
    return {
        "name": name,
        "c": concurrency,
        "tps": n / seconds,
        "p50": latencies[n // 2] * 1000 if n else float("nan"),
        "p99": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else float("nan"),
        "n": n,
    }


SQL_LOOP = text("UPDATE users SET balance = balance - 1 WHERE id = :id AND balance >= 1")
KEYS = itertools.count()  # the interleaved runs' request keys: unique for the whole bench


async def one_charge(sm: Any, settings: Settings, kind: str, index: int, key: str) -> None:
    """One transaction of the run ``kind`` by the user of worker ``index``."""
    # plans-sub: the users who hold the benchmark subscription (after the money users)
    user_id = index + 1 + (USERS[0] if kind in ("plans-sub", "sub-whole", "sub-floor") else 0)
    async with sm() as session:
        if kind == "sub-whole":  # no hint: the whole chain every time
            operations._SUB_PAID.pop(user_id, None)
        if kind in ("charge", "plans-bal", "plans-sub", "sub-whole"):
            result = await operations.charge(
                session,
                settings,
                user_id=user_id,
                op_type="upscale",
                request_key=key,
                chat_id=user_id,
            )
            on_quota = kind in ("plans-sub", "sub-whole")
            expected = "subscription" if on_quota else "balance"
            assert result.funding == expected, result
        elif kind == "sub-floor":
            await quota_floor_charge(
                session, settings, user_id=user_id, request_key=key, chat_id=user_id
            )
        elif kind == "plain":
            await plain_charge(
                session, settings, user_id=user_id, request_key=key, chat_id=user_id
            )
        elif kind == "cte-today":
            kind_ = operation_type("upscale")
            await reference_charge(
                session,
                settings,
                user_id=user_id,
                kind=kind_.value,
                price=price_for(kind_, settings),
                request_key=key,
                chat_id=user_id,
                input_ref=None,
            )
        else:
            await session.execute(SQL_LOOP, {"id": user_id})
        await session.commit()


async def open_pool(sm: Any, concurrency: int) -> set[int]:
    """Every connection of the pool open at once; their PostgreSQL server processes (whose
    CPU a run then counts beside this process's)."""
    pids: set[int] = set()
    ready = asyncio.Event()

    async def warm() -> None:
        async with sm() as session:
            pids.add(await session.scalar(text("SELECT pg_backend_pid()")))
            if len(pids) == concurrency:
                ready.set()
            await ready.wait()

    await asyncio.gather(*(warm() for _ in range(concurrency)))
    return pids


async def interleaved(
    names: list[str], concurrency: int, slices: int, slice_seconds: float
) -> dict[str, dict]:
    """The runs ``names`` in turns of ``slice_seconds``, ``slices`` times each, the order
    rotating, on one pool of ``concurrency`` connections: the load the machine is under
    changes within seconds, and each run gets the same share of every minute (run one after
    the other, the first run of a pair came out 10-20 % faster or slower by its place alone).
    Per run: tx/s over all its slices, CPU per charge (this process and its PostgreSQL
    backends), and the median over the slices of its ratio to ``names[0]`` in that turn."""
    settings = Settings(_env_file=None, DATABASE_URL=db_url())  # type: ignore[call-arg]
    engine = make_engine(db_url(), pool_size=concurrency, max_overflow=0)
    sm = make_sessionmaker(engine)
    pids = await open_pool(sm, concurrency)
    totals = {name: {"n": 0, "seconds": 0.0, "client": 0.0, "server": 0.0} for name in names}
    per_slice: dict[str, list[float]] = {name: [] for name in names}

    async def run(name: str, seconds: float) -> tuple[int, float, float, float]:
        stop = time.perf_counter() + seconds
        done = 0

        async def worker(index: int) -> None:
            nonlocal done
            while time.perf_counter() < stop:
                await one_charge(sm, settings, name, index, f"i-{name}-{next(KEYS)}")
                done += 1

        server, client, started = backend_cpu(pids), time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        return (
            done,
            time.perf_counter() - started,
            time.process_time() - client,
            backend_cpu(pids) - server,
        )

    for name in names:  # every statement prepared on every connection, not counted
        await run(name, WARM_SECONDS)
    for k in range(slices):
        tps = {}
        for name in names[k % len(names) :] + names[: k % len(names)]:
            done, seconds, client, server = await run(name, slice_seconds)
            t = totals[name]
            t["n"] += done
            t["seconds"] += seconds
            t["client"] += client
            t["server"] += server
            tps[name] = done / seconds
        for name in names:
            per_slice[name].append(tps[name] / tps[names[0]])
    await engine.dispose()
    base = totals[names[0]]["n"] / totals[names[0]]["seconds"]
    rows = {}
    for name in names:
        t = totals[name]
        rows[name] = {
            "name": name,
            "c": concurrency,
            "tps": t["n"] / t["seconds"],
            "ratio": t["n"] / t["seconds"] / base,
            "slice_ratio": statistics.median(per_slice[name]),
            "client": t["client"] * 1000 / t["n"],
            "server": t["server"] * 1000 / t["n"],
        }
    return rows


INTERLEAVED_HEADER = (
    f"{'run':<10}{'users':>6}{'tx/s':>10}{'vs cte':>8}{'slices':>8}"
    f"{'CPU ms':>9}{'client':>8}{'PG':>8}"
)


def print_interleaved(rows: dict[str, dict]) -> None:
    for row in rows.values():
        print(
            f"{row['name']:<10}{row['c']:>6}{row['tps']:>10.0f}{row['ratio']:>8.3f}"
            f"{row['slice_ratio']:>8.3f}{row['client'] + row['server']:>9.3f}"
            f"{row['client']:>8.3f}{row['server']:>8.3f}"
        )


async def run_loop(kind: str, concurrency: int, seconds: float, round_no: int = 0) -> dict:
    settings = Settings(_env_file=None, DATABASE_URL=db_url())  # type: ignore[call-arg]
    engine = make_engine(db_url(), pool_size=concurrency, max_overflow=0)
    sm = make_sessionmaker(engine)
    latencies: list[float] = []
    stop = 0.0

    async def worker(index: int) -> None:
        seq = 0
        while time.perf_counter() < stop:
            seq += 1
            t0 = time.perf_counter()
            await one_charge(
                sm, settings, kind, index, f"{kind}-{concurrency}-{round_no}-{index}:{seq}"
            )
            latencies.append(time.perf_counter() - t0)

    # Warm the pool up: every connection open at once, its server process noted, so the
    # CPU the run costs is counted on both sides (this process and its PostgreSQL backends:
    # a figure other load on the machine disturbs far less than tx/s).
    pids = await open_pool(sm, concurrency)
    # A second of the same load, not counted: every connection past its first executions
    # (SQLAlchemy compiles a statement once per engine, PostgreSQL plans a prepared
    # statement afresh on each connection's first five runs).
    stop = time.perf_counter() + WARM_SECONDS
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    latencies.clear()
    round_no += 1000
    server_before, client_before = backend_cpu(pids), time.process_time()
    started = time.perf_counter()
    stop = started + seconds
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    server, client = backend_cpu(pids) - server_before, time.process_time() - client_before
    await engine.dispose()
    row = summarize(kind, concurrency, latencies, elapsed)
    if latencies and server >= 0:
        row["cpu"] = (server + client) * 1000 / len(latencies)
        row["server_cpu"] = server * 1000 / len(latencies)
    return row


def backend_cpu(pids: set[int]) -> float:
    """Seconds of CPU the PostgreSQL server processes ``pids`` used so far (user + system),
    from /proc: -1 when the server is not on this machine."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return -1.0
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def pgbench(concurrency: int, seconds: float, users: int) -> dict | None:
    binary = shutil.which("pgbench") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"), reverse=True)), None
    )
    if binary is None:
        return None
    script = (
        f"\\set id random(1, {min(users, concurrency)})\n"
        "UPDATE users SET balance = balance - 1 WHERE id = :id AND balance >= 1;\n"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
    host = re.search(r"@([^:/]+)", ADMIN)
    port = re.search(r":(\d+)/", ADMIN)
    cmd = [
        binary,
        "-n",
        "-h",
        host.group(1) if host else "127.0.0.1",
        "-p",
        port.group(1) if port else "5432",
        "-U",
        "postgres",
        "-c",
        str(concurrency),
        "-j",
        str(min(concurrency, 2)),
        "-T",
        str(int(seconds)),
        "-f",
        f.name,
        DB,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    os.unlink(f.name)
    tps = re.search(r"tps = ([\d.]+)", out)
    lat = re.search(r"latency average = ([\d.]+) ms", out)
    if not tps:
        return None
    return {
        "name": "pgbench",
        "c": concurrency,
        "tps": float(tps.group(1)),
        "p50": float(lat.group(1)) if lat else float("nan"),
        "p99": float("nan"),
        "n": 0,
    }


WARM_SECONDS = 1.0
PLANS_HEADER = (
    f"{'run':<10}{'users':>6}{'tx/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'vs plain':>9}"
    f"{'CPU ms':>9}{'of it PG':>9}{'plain/it':>9}"
)
USERS = [0]  # how many money users prepare() made (the subscription users come after)


def plans_rounds(c: int, seconds: float, rounds: int) -> None:
    """plain, plans-bal and plans-sub in turns, ``rounds`` times (the order rotates, so no
    run always gets the warmest server); the ratios to plain per round and their median."""
    names = ["plain", "plans-bal", "plans-sub", "sub-whole", "sub-floor"]
    ratios: dict[str, list[float]] = {name: [] for name in names[1:]}
    cpu_ratios: dict[str, list[float]] = {name: [] for name in names[1:]}
    floor: list[float] = []
    floor_cpu: list[float] = []
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        got = {name: asyncio.run(run_loop(name, c, seconds, r)) for name in order}
        load = os.getloadavg()[0]
        for name in names:
            row = got[name]
            vs = row["tps"] / got["plain"]["tps"]
            cpu = row.get("cpu", float("nan"))
            cpu_vs = got["plain"].get("cpu", float("nan")) / cpu
            if name != "plain":
                ratios[name].append(vs)
                cpu_ratios[name].append(cpu_vs)
            print(
                f"{name:<10}{row['c']:>6}{row['tps']:>10.0f}{row['p50']:>9.2f}"
                f"{row['p99']:>9.2f}{vs:>9.2f}{cpu:>9.3f}{row.get('server_cpu', 0):>9.3f}"
                f"{cpu_vs:>9.2f}   (round {r + 1}, load {load:.1f})"
            )
        floor.append(got["plans-sub"]["tps"] / got["sub-floor"]["tps"])
        floor_cpu.append(
            got["sub-floor"].get("cpu", float("nan")) / got["plans-sub"].get("cpu", float("nan"))
        )
    for name, values in ratios.items():
        print(
            f"{name} / plain at {c} users: tx/s median {statistics.median(values):.3f} "
            f"(each round: {', '.join(f'{v:.3f}' for v in values)}); CPU per charge "
            f"plain/{name} median {statistics.median(cpu_ratios[name]):.3f} "
            f"(each round: {', '.join(f'{v:.3f}' for v in cpu_ratios[name])})"
        )
    # The ceiling of a quota charge in this design: the least it can write (sub-floor).
    print(
        f"plans-sub / sub-floor at {c} users: tx/s median {statistics.median(floor):.3f} "
        f"(each round: {', '.join(f'{v:.3f}' for v in floor)}); CPU per charge "
        f"sub-floor/plans-sub median {statistics.median(floor_cpu):.3f} "
        f"(each round: {', '.join(f'{v:.3f}' for v in floor_cpu)})"
    )


def compare(c: int, slices: int, slice_seconds: float) -> None:
    """The project's charge and the chain before plans against the code before issue 13,
    interleaved (see :func:`interleaved`)."""
    names = ["cte-today", "plain", "charge", "sql-loop"]
    rows = asyncio.run(interleaved(names, c, slices, slice_seconds))
    print(f"interleaved: {slices} turns of {slice_seconds:g} s each, CPU in ms per charge")
    print(INTERLEAVED_HEADER)
    print_interleaved(rows)
    base = rows["cte-today"]
    for name in ("charge", "plain"):
        row = rows[name]
        cpu = (base["client"] + base["server"]) / (row["client"] + row["server"])
        print(
            f"{name} / cte-today at {c} users, interleaved: tx/s {row['ratio']:.3f} "
            f"(median of the turns {row['slice_ratio']:.3f}); "
            f"CPU per charge cte-today/{name} {cpu:.3f}"
        )
    loop = rows["sql-loop"]["tps"]
    print(
        f"of the same-stack single-row UPDATE (sql-loop) at {c} users: cte-today "
        f"{base['tps'] / loop:.3f}, plain {rows['plain']['tps'] / loop:.3f}, "
        f"charge {rows['charge']['tps'] / loop:.3f}"
    )


def signups(rounds: int, count: int) -> None:
    """A chain run once (a new user's row and signup entry, ``billing.ledger.run``) as a
    Core statement, which SQLAlchemy's compiled cache finds by its key, and compiled to text
    for that one run (``ledger.as_text``, which pays off only for a chain kept and run
    again): CPU per signup, one at a time, the sides alternating."""
    telegram_ids = itertools.count(10**12)

    async def side(kept: bool) -> float:
        engine = make_engine(db_url(), pool_size=2)
        sm = make_sessionmaker(engine)
        original = ledger.run

        async def run(session: AsyncSession, steps: list, **params: Any) -> dict:
            return await ledger.Chain(*steps, kept=kept).run(session, **params)

        accounts.ledger.run = run  # type: ignore[assignment]
        try:
            started = time.process_time()
            for _ in range(count):
                async with sm() as session:
                    await accounts.get_or_create_user(
                        session, telegram_id=next(telegram_ids), free_operations=3
                    )
                    await session.commit()
            return (time.process_time() - started) / count * 1000
        finally:
            accounts.ledger.run = original  # type: ignore[assignment]
            await engine.dispose()

    core, texts = [], []
    for _ in range(rounds):
        core.append(asyncio.run(side(kept=False)))
        texts.append(asyncio.run(side(kept=True)))
    print(
        f"signup, client CPU per signup (median of {rounds} alternating rounds of {count}): "
        f"core {statistics.median(core):.2f} ms, as text {statistics.median(texts):.2f} ms, "
        f"text / core {statistics.median(texts) / statistics.median(core):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--rounds", type=int, default=1, help="turns of the plans runs")
    parser.add_argument(
        "--plans-only", action="store_true", help="only plain / plans-bal / plans-sub / sub-floor"
    )
    parser.add_argument(
        "--compare-only", action="store_true", help="only cte-today / plain / charge, interleaved"
    )
    parser.add_argument(
        "--signups-only", action="store_true", help="only a chain run once: core vs text"
    )
    parser.add_argument("--slices", type=int, default=20, help="turns of the interleaved runs")
    parser.add_argument("--slice-seconds", type=float, default=0.5)
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",")]
    users = max(levels)
    USERS[0] = users
    prepare(users)
    if args.signups_only:
        signups(5, 300)
        return
    print(f"PostgreSQL charge benchmark, {args.seconds:.0f} s per run, {os.cpu_count()} cores")
    print(
        f"{'run':<10}{'users':>6}{'tx/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'vs sql':>9}{'vs pgb':>9}"
    )
    for c in levels:
        if args.compare_only:
            compare(c, args.slices, args.slice_seconds)
            continue
        if args.plans_only:
            print(PLANS_HEADER)
            plans_rounds(c, args.seconds, args.rounds)
            continue
        base = asyncio.run(run_loop("sql-loop", c, args.seconds))
        pgb = pgbench(c, args.seconds, users)
        reference = asyncio.run(run_loop("cte-today", c, args.seconds))
        charge = asyncio.run(run_loop("charge", c, args.seconds))
        for row in (pgb, base, reference, charge):
            if row is None:
                continue
            vs_sql = row["tps"] / base["tps"] if base["tps"] else float("nan")
            vs_pgb = row["tps"] / pgb["tps"] if pgb else float("nan")
            print(
                f"{row['name']:<10}{row['c']:>6}{row['tps']:>10.0f}{row['p50']:>9.2f}"
                f"{row['p99']:>9.2f}{vs_sql:>9.2f}{vs_pgb:>9.2f}"
            )
        if reference["tps"]:
            print(
                f"charge / cte-today at {c} users, one run after the other: "
                f"{charge['tps'] / reference['tps']:.2f}"
            )
        compare(c, args.slices, args.slice_seconds)
        print(PLANS_HEADER)
        plans_rounds(c, args.seconds, args.rounds)
    signups(5, 300)
    print("pgbench p50 column is its average latency; ratios are tx/s over the baselines.")


if __name__ == "__main__":
    main()
