"""Charges per second and latency on PostgreSQL, against a single-row UPDATE baseline.

    .venv/bin/python bench/charge.py [--seconds 5] [--concurrency 1,16,64]

Each concurrent "user" charges its own account in a loop: the full transaction the bot runs
(duplicate check by request key, conditional debit, operation row, ledger entry, commit).
The baselines run in the same process against the same database:
  * sql-loop: the same client stack (SQLAlchemy + asyncpg) doing only
    ``UPDATE users SET balance = balance - 1 WHERE id = :id AND balance >= 1`` per transaction;
  * pgbench: the same UPDATE from pgbench's C client, when pgbench is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alembic.config import Config  # noqa: E402

from alembic import command  # noqa: E402
from billing import service  # noqa: E402
from billing.db import make_engine, make_sessionmaker  # noqa: E402
from billing.settings import Settings  # noqa: E402

ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
DB = "medialab_bench"


def db_url() -> str:
    base = ADMIN.rsplit("/", 1)[0]
    return f"{base}/{DB}"


def prepare(users: int) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB}"')
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.attributes["url"] = db_url()
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")

    async def seed() -> None:
        engine = make_engine(db_url(), pool_size=2)
        async with make_sessionmaker(engine)() as session:
            for i in range(users):
                user, _ = await service.get_or_create_user(
                    session, telegram_id=10_000 + i, free_operations=0
                )
                await service.adjust(
                    session, user_id=user.id, amount=10**12, reason="benchmark money"
                )
            await session.commit()
        await engine.dispose()

    asyncio.run(seed())


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


async def run_loop(kind: str, concurrency: int, seconds: float) -> dict:
    settings = Settings(_env_file=None, DATABASE_URL=db_url())  # type: ignore[call-arg]
    engine = make_engine(db_url(), pool_size=concurrency)
    sm = make_sessionmaker(engine)
    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    update = text("UPDATE users SET balance = balance - 1 WHERE id = :id AND balance >= 1")

    async def worker(index: int) -> None:
        user_id = index + 1
        seq = 0
        while time.perf_counter() < stop:
            seq += 1
            t0 = time.perf_counter()
            async with sm() as session:
                if kind == "charge":
                    await service.charge(
                        session,
                        settings,
                        user_id=user_id,
                        op_type="upscale",
                        request_key=f"{kind}-{concurrency}-{index}:{seq}",
                        chat_id=user_id,
                    )
                else:
                    await session.execute(update, {"id": user_id})
                await session.commit()
            latencies.append(time.perf_counter() - t0)

    # warm the pool up
    async with sm() as session:
        await session.execute(text("SELECT 1"))
    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return summarize(kind, concurrency, latencies, elapsed)


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--concurrency", default="1,16,64")
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",")]
    users = max(levels)
    prepare(users)
    print(f"PostgreSQL charge benchmark, {args.seconds:.0f} s per run, {os.cpu_count()} cores")
    print(
        f"{'run':<10}{'users':>6}{'tx/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'vs sql':>9}{'vs pgb':>9}"
    )
    for c in levels:
        base = asyncio.run(run_loop("sql-loop", c, args.seconds))
        pgb = pgbench(c, args.seconds, users)
        charge = asyncio.run(run_loop("charge", c, args.seconds))
        for row in (pgb, base, charge):
            if row is None:
                continue
            vs_sql = row["tps"] / base["tps"] if base["tps"] else float("nan")
            vs_pgb = row["tps"] / pgb["tps"] if pgb else float("nan")
            print(
                f"{row['name']:<10}{row['c']:>6}{row['tps']:>10.0f}{row['p50']:>9.2f}"
                f"{row['p99']:>9.2f}{vs_sql:>9.2f}{vs_pgb:>9.2f}"
            )
    print("pgbench p50 column is its average latency; ratios are tx/s over the baselines.")


if __name__ == "__main__":
    main()
