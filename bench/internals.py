"""The speed tweaks that lean on a library's internals, each measured with and without it in
the same run (rounds alternate, the best of each side is kept).

    .venv/bin/python bench/internals.py [--rounds 3]

- ``pin``: ``tg.response_models`` keeps aiogram's ``Response[T]`` models alive (pydantic caches
  parametrized generics weakly). Measured: ``check_response`` of five Bot API methods the bot
  calls, on a frozen startup heap (as in the processes), with no forced collection and with
  a full collection every 1000 and every 100 calls: the gain is the rebuilds a full
  collection causes, so it grows with how often the process collects (the web server was
  seen rebuilding ``Response[Message]`` every ~10 messages before the pin).
- ``pool``: ``billing.db._check_on_checkout`` (the web's engine) instead of ``pool_pre_ping``.
  Measured: 16 concurrent transactions of two statements on PostgreSQL
  (``BENCH_POSTGRES_URL``, default the local server's ``postgres`` database; read-only).
- ``yookassa``: ``billing.yookassa_sdk`` keeps the SDK's requests session per thread instead of a
  new one (a new connection, the environment read again) per call. Measured: GET a payment
  from a local keep-alive HTTP server (plain HTTP: in production TLS makes a new connection
  cost far more, so the figure is a lower bound).

- ``cacheable``: ``billing.ledger._cacheable`` opts the dialects' ``ON CONFLICT DO NOTHING``
  insert into SQLAlchemy's compiled cache. On PostgreSQL a chain runs as its SQL text,
  compiled once (``billing.ledger.as_text``), so only SQLite (the embedded default of
  ``make run``, one statement per step) still needs it. Measured: charges of one user from
  the balance on a SQLite file, one after the other.

A tweak stays only if it gains more than 5 %.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GAIN_TO_KEEP = 0.05


def _best(rounds: int, without: Callable[[], float], with_: Callable[[], float]) -> tuple:
    """Rates (per second, higher is better), alternating sides; the best of each."""
    a, b = [], []
    for _ in range(rounds):
        a.append(without())
        b.append(with_())
    return max(a), max(b)


def _report(name: str, unit: str, without: float, with_: float) -> None:
    gain = with_ / without - 1
    verdict = "keep" if gain > GAIN_TO_KEEP else "REMOVE"
    print(
        f"{name:11} without {without:10.1f} {unit}   with {with_:10.1f} {unit}   "
        f"ratio {with_ / without:5.2f}  gain {gain:+.0%}  -> {verdict}",
        flush=True,
    )


# --- pin -----------------------------------------------------------------------------------


def bench_pin(rounds: int, calls: int) -> None:
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.methods import (
        AnswerCallbackQuery,
        EditMessageText,
        GetFile,
        SendChatAction,
        SendMessage,
    )

    from billing.heap import freeze_startup_heap
    from tg import response_models

    message = {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}, "text": "x"}
    cases = [
        (SendMessage(chat_id=1, text="x"), {"ok": True, "result": message}),
        (AnswerCallbackQuery(callback_query_id="1"), {"ok": True, "result": True}),
        (
            GetFile(file_id="f"),
            {"ok": True, "result": {"file_id": "f", "file_unique_id": "u", "file_path": "p"}},
        ),
        (EditMessageText(chat_id=1, message_id=1, text="y"), {"ok": True, "result": message}),
        (SendChatAction(chat_id=1, action="typing"), {"ok": True, "result": True}),
    ]
    cases = [(method, json.dumps(body)) for method, body in cases]
    session = AiohttpSession()
    bot = Bot("123456:bench-token", session=session)

    def run(pinned: bool, full_gc_every: int) -> float:
        response_models._PINNED.clear()
        freeze_startup_heap()  # the GC as in the processes: startup heap frozen
        start = time.perf_counter()
        for i in range(calls):
            method, content = cases[i % len(cases)]
            if pinned:
                response_models.pin(type(method))  # what the middleware does per call
            session.check_response(bot, method, 200, content)
            if full_gc_every and i % full_gc_every == full_gc_every - 1:
                gc.collect()
        return calls / (time.perf_counter() - start)

    for every in (0, 1000, 100):
        name = f"pin/gc{every}" if every else "pin/no-gc"
        rates = _best(rounds, partial(run, False, every), partial(run, True, every))
        _report(name, "calls/s", *rates)


# --- pool ----------------------------------------------------------------------------------


def bench_pool(rounds: int, transactions: int, concurrency: int = 16) -> None:
    from sqlalchemy import text

    from billing.db import make_engine, make_sessionmaker

    url = os.environ.get(
        "BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )

    async def run(ping_idle_after: float | None) -> float:
        engine = make_engine(url, pool_size=20, max_overflow=0, ping_idle_after=ping_idle_after)
        sessionmaker = make_sessionmaker(engine)
        left = transactions

        async def client() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                async with sessionmaker() as session, session.begin():
                    await session.execute(text("SELECT 1"))
                    await session.execute(text("SELECT 2"))

        try:
            await asyncio.gather(*(client() for _ in range(concurrency)))  # warm the pool
            left = transactions
            start = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(concurrency)))
            return transactions / (time.perf_counter() - start)
        finally:
            await engine.dispose()

    _report(
        "pool",
        "tx/s",
        *_best(rounds, lambda: asyncio.run(run(None)), lambda: asyncio.run(run(10.0))),
    )


# --- yookassa ------------------------------------------------------------------------------


class _PaymentServer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as YooKassa's API
    # One write per answer and no Nagle: else a kept connection waits for delayed ACKs.
    wbufsize = 65536
    disable_nagle_algorithm = True
    body = json.dumps(
        {
            "id": "2d6f0d5e-000f-5000-8000-1b0e3c2a8e6a",
            "status": "succeeded",
            "paid": True,
            "amount": {"value": "100.00", "currency": "RUB"},
            "metadata": {"payment_key": "k"},
        }
    ).encode()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


def bench_yookassa(rounds: int, calls: int) -> None:
    from yookassa import Configuration

    from billing import yookassa_sdk as yookassa

    server = ThreadingHTTPServer(("127.0.0.1", 0), _PaymentServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Configuration.configure("100500", "bench", api_url=f"http://127.0.0.1:{server.server_port}/v3")
    client = yookassa._TimeoutApiClient()

    def run(kept: bool) -> float:
        yookassa._drop_thread_session(client)
        start = time.perf_counter()
        for _ in range(calls):
            client.request("GET", "/payments/2d6f0d5e-000f-5000-8000-1b0e3c2a8e6a")
            if not kept:
                yookassa._drop_thread_session(client)  # the SDK's way: a session per call
        return calls / (time.perf_counter() - start)

    try:
        _report("yookassa", "calls/s", *_best(rounds, lambda: run(False), lambda: run(True)))
    finally:
        yookassa._drop_thread_session(client)
        server.shutdown()


# --- cacheable -------------------------------------------------------------------------------


def bench_cacheable(rounds: int, charges: int) -> None:
    import tempfile

    from alembic.config import Config
    from sqlalchemy.dialects import postgresql, sqlite

    from alembic import command
    from billing import accounts, ledger, operations
    from billing.db import make_engine, make_sessionmaker
    from billing.settings import Settings

    tweaked = dict(ledger._INSERT_OR_SKIP)
    plain = {
        name: (dialect.Insert, dialect.dml.OnConflictDoNothing)
        for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
    }
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        config = Config(str(root / "alembic.ini"))
        config.set_main_option("script_location", str(root / "alembic"))
        config.attributes["url"] = url
        config.attributes["configure_logger"] = False
        command.upgrade(config, "head")
        settings = Settings(_env_file=None, DATABASE_URL=url)  # type: ignore[call-arg]
        keys = iter(range(10**9))

        async def run(classes: dict) -> float:
            ledger._INSERT_OR_SKIP.update(classes)
            operations._CHARGES.clear()  # the chains are built again with these classes
            engine = make_engine(url)
            sm = make_sessionmaker(engine)
            async with sm() as session:
                user, _ = await accounts.get_or_create_user(
                    session, telegram_id=1, free_operations=0
                )
                await session.commit()
                user_id = user.id
            async with sm() as session:
                await accounts.adjust(
                    session, user_id=user_id, amount=10**12, reason="bench", key=f"b{next(keys)}"
                )
                await session.commit()
            started = time.perf_counter()
            for _ in range(charges):
                async with sm() as session:
                    await operations.charge(
                        session,
                        settings,
                        user_id=user_id,
                        op_type="upscale",
                        request_key=f"k{next(keys)}",
                    )
                    await session.commit()
            rate = charges / (time.perf_counter() - started)
            await engine.dispose()
            return rate

        try:
            rates = _best(
                rounds, lambda: asyncio.run(run(plain)), lambda: asyncio.run(run(tweaked))
            )
        finally:
            ledger._INSERT_OR_SKIP.update(tweaked)
            operations._CHARGES.clear()
        _report("cacheable", "charges/s", *rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=["pin", "pool", "yookassa", "cacheable"])
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}; best of {args.rounds} alternating rounds")
    if args.only in (None, "pin"):
        bench_pin(args.rounds, 20_000)
    if args.only in (None, "pool"):
        bench_pool(args.rounds, 4_000)
    if args.only in (None, "yookassa"):
        bench_yookassa(args.rounds, 2_000)
    if args.only in (None, "cacheable"):
        bench_cacheable(args.rounds, 500)


if __name__ == "__main__":
    main()
