"""Found by bench/load.py: with 200 users sending at once, ``python -m bot`` failed updates
with redis-py's "Too many connections" — its asyncio pool refuses a 101st connection in use
rather than waiting — and refunded the operations it had just charged. The bot's client
(``bot.app.make_redis``) waits for a free connection instead."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.exceptions import MaxConnectionsError

from bot.app import make_redis
from tests.conftest import make_settings

BURST = 160  # more commands in flight than redis-py's default pool allows (100)


async def burst(client: Redis) -> list[object]:
    """Commands that each hold a connection for a moment, all at once."""
    return await asyncio.gather(
        *(client.blpop([f"chaos:burst:{i}"], timeout=0.2) for i in range(BURST))
    )


async def test_the_bots_redis_client_waits_out_a_burst(redis_url: str) -> None:
    client = make_redis(make_settings("sqlite:///unused.db", redis_url))
    try:
        assert await burst(client) == [None] * BURST
    finally:
        await client.aclose()


async def test_a_plain_client_would_have_failed(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        with pytest.raises(MaxConnectionsError):
            await burst(client)
    finally:
        await client.aclose()


async def test_the_bots_redis_client_reconnects_after_a_redis_restart(tmp_path) -> None:
    """Found by the scenarios after the Redis restart: every connection pooled before the
    restart failed the next update that drew it ("Connection closed by server"), minutes
    later. The bot's client reconnects and retries the command instead."""
    from tests.chaos.stack import OwnRedis

    server = OwnRedis(tmp_path / "redis").start()
    client = make_redis(make_settings("sqlite:///unused.db", server.url), max_connections=8)
    try:
        await burst_of(client, 8)  # eight pooled connections
        server.restart()
        for i in range(8):  # each draws a connection to the old server
            assert await client.set(f"after-restart:{i}", "1") is True
    finally:
        await client.aclose()
        server.kill()


async def burst_of(client: Redis, n: int) -> None:
    await asyncio.gather(*(client.blpop([f"chaos:pool:{i}"], timeout=0.2) for i in range(n)))
