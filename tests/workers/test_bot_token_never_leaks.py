"""The bot token never leaves the worker in a log line, a database row or Redis.

A file URL holds the token (``/file/bot<TOKEN>/…``), and aiohttp puts the URL into the
error of a download that fails. Here the Bot API stand-in answers the worker's download with
a 502, a 404 or a dropped connection; after each, the worker's whole log, every row of every
table (each row cast to text: JSON columns included) and everything in the test's Redis
database (key names and values of every type, RQ's compressed ones unpacked) are searched
for the token. The scanners are first shown to find a planted token, so none of them can pass
for want of looking.
"""

from __future__ import annotations

import base64
import zlib

import pytest
from redis import Redis
from sqlalchemy import text

from billing.models import LedgerKind
from sandbox._common import ServerHandle
from sandbox.telegram_client import TelegramEmulatorClient

# Distinctive, of Telegram's shape; its secret half has no character a URL encodes, so a
# search for it also finds the token percent-encoded.
TOKEN_SECRET = "LEAKCHECK-7d41f0c2e9b8_TokenMustNeverBeStored"
TOKEN = f"987654321:{TOKEN_SECRET}"
NEEDLE = TOKEN_SECRET.encode()


@pytest.fixture
async def tg(tg_server: ServerHandle):  # noqa: ANN201 - overrides the conftest's client
    async with TelegramEmulatorClient(tg_server.url, token=TOKEN) as client:
        yield client


# --- the scanners -----------------------------------------------------------------------


def _unpacked(value: bytes) -> list[bytes]:
    """A Redis value and what RQ packs into one: zlib (job data, exc_info) and base64 of
    zlib (the exc_string of its results stream)."""
    forms = [value]
    try:
        forms.append(zlib.decompress(value))
    except zlib.error:
        pass
    try:
        forms.append(zlib.decompress(base64.b64decode(value, validate=True)))
    except (ValueError, zlib.error):
        pass
    return forms


def redis_hits(redis: Redis, needle: bytes) -> list[str]:
    """Every key of the database whose name or content holds ``needle``, whatever its type."""
    hits = []
    for key in redis.scan_iter(count=1000):
        kind = redis.type(key).decode()
        if kind == "string":
            parts = [redis.get(key) or b""]
        elif kind == "hash":
            parts = [p for item in redis.hgetall(key).items() for p in item]
        elif kind == "list":
            parts = redis.lrange(key, 0, -1)
        elif kind == "set":
            parts = list(redis.smembers(key))
        elif kind == "zset":
            parts = [member for member, _ in redis.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            parts = [
                p
                for entry_id, fields in redis.xrange(key)
                for p in (entry_id, *(x for item in fields.items() for x in item))
            ]
        elif kind == "none":  # expired meanwhile
            continue
        else:
            raise AssertionError(f"a Redis key of a type the scan does not read: {key!r} {kind}")
        values = [key, *parts]
        if any(needle in form for value in values for form in _unpacked(value)):
            hits.append(f"{key.decode(errors='replace')} ({kind})")
    return hits


async def database_hits(h, needle: str) -> list[str]:  # noqa: ANN001
    """Every row of every table in the test's database that holds ``needle`` (the whole row
    cast to text, so every column is searched, JSON ones included)."""
    hits = []
    async with h.engine.connect() as conn:
        tables = (
            await conn.execute(
                text(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
                )
            )
        ).scalars()
        for table in list(tables):
            rows = (await conn.execute(text(f'SELECT t::text FROM "{table}" t'))).scalars()
            hits += [f"{table}: {row}" for row in rows if needle in row]
    return hits


def assert_redis_scan_sees(redis: Redis) -> None:
    """The scan finds a token planted in every type of key, and in the name of one."""
    packed = base64.b64encode(zlib.compress(b"Traceback ... " + TOKEN.encode()))
    redis.set("canary:string", zlib.compress(TOKEN.encode()))
    redis.set(f"canary:name:{TOKEN}", "1")
    redis.hset("canary:hash", "exc_string", packed)
    redis.rpush("canary:list", "x", TOKEN)
    redis.sadd("canary:set", TOKEN)
    redis.zadd("canary:zset", {TOKEN: 1})
    redis.xadd("canary:stream", {"exc_string": packed})
    redis.set("canary:clean", "nothing here")
    try:
        assert sorted(redis_hits(redis, NEEDLE)) == sorted(
            [
                "canary:string (string)",
                f"canary:name:{TOKEN} (string)",
                "canary:hash (hash)",
                "canary:list (list)",
                "canary:set (set)",
                "canary:zset (zset)",
                "canary:stream (stream)",
            ]
        )
    finally:
        redis.delete(*redis.keys("canary:*"))


# --- the worker ---------------------------------------------------------------------------


FAULTS = [
    # (the download's answer, the refund notice's reason)
    ("502", "Telegram не принял запрос"),
    ("404", "не удалось получить фото из Telegram"),
    ("disconnect", "сервис временно недоступен"),
]


@pytest.mark.real_worker
async def test_failed_downloads_leave_no_token_in_logs_database_or_redis(
    harness_factory, images
) -> None:
    h = harness_factory(BOT_TOKEN=TOKEN, JOB_RETRIES=0, FREE_OPERATIONS_COUNT=0)
    assert_redis_scan_sees(h.redis)
    worker = h.start_worker(BOT_TOKEN=TOKEN)
    await h.wait_ready(worker)
    user = h.user()

    for done, (kind, reason) in enumerate(FAULTS):
        file_id = await h.upload(user, images("hopper.jpg"))
        # Every try of the download meets the fault (the worker tries a 5xx three times).
        await h.tg.fail_next(10, kind=kind, methods=["file"])
        operation_id = await h.new_operation(user, "retouch", [file_id], balance=1000)

        op = await h.wait_final(operation_id)
        assert op.status == "refunded", f"{kind}: {op.status}: {op.error}\n{h.logs()}"
        assert await h.entries(operation_id, LedgerKind.REFUND) == 1

        async def notices(count: int = done + 1) -> list:
            found = [m for m in await user.bot_messages() if "возвращены" in m.text]
            return found if len(found) >= count else []

        notice = (await h.wait_until(notices, f"the refund notice ({kind})"))[-1]
        assert reason in notice.text, f"{kind}: {notice.text}"
        assert "10 ₽ возвращены на баланс" in notice.text
        await h.tg.reset_faults()

        # The scanners look where the failure went: they find this operation's file id in
        # the row's JSON and in RQ's packed job, and its traceback in RQ's packed result.
        assert await database_hits(h, file_id), "the database scan finds nothing"
        assert redis_hits(h.redis, file_id.encode()), "the Redis scan finds nothing"

        # RQ stores the failure (its traceback) after the refund and its notice; the worker
        # logs the operation's line after its commit: wait for both, then scan.
        async def stored_and_logged(operation_id: int = operation_id) -> bool:
            traceback = any(k.startswith("rq:results:") for k in redis_hits(h.redis, b"Traceback"))
            return traceback and f"operation {operation_id}" in worker.log()

        await h.wait_until(stored_and_logged, f"RQ's stored traceback and the log ({kind})")

        assert TOKEN_SECRET not in worker.log(), f"{kind}: the token is in the log\n{h.logs()}"
        assert await database_hits(h, TOKEN_SECRET) == [], f"{kind}: the token is in the database"
        assert redis_hits(h.redis, NEEDLE) == [], f"{kind}: the token is in Redis"
