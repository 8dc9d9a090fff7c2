"""How long a burst of one user's updates (an album, a few quick taps) takes to be handled,
with aiogram's Redis lock alone and with ``bot.isolation.OrderedEventIsolation`` in front of
it, in the same run (rounds alternate, the median of each side is printed), and in what
order the updates were handled.

    .venv/bin/python bench/update_order.py [--updates 5] [--handler-ms 20] [--apart-ms 2]
                                           [--rounds 5]

Each handler holds the lock ``--handler-ms`` (a database round trip or two, a reply). With
the Redis lock alone a waiter polls every 0.1 s (redis-py's default), so each update after
the first waits for its next poll; in order, the next one starts when the last ends.
Redis: ``BENCH_REDIS_URL`` (default redis://127.0.0.1:6379/0, which no test run leases; only
the lock's own key, under a bot id no bot has, is written and deleted when released).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

from aiogram.fsm.storage.base import BaseEventIsolation, StorageKey
from aiogram.fsm.storage.redis import RedisEventIsolation
from redis.asyncio import Redis

from bot.isolation import OrderedEventIsolation

KEY = StorageKey(bot_id=-os.getpid(), chat_id=7, user_id=7)  # no real bot's key


async def burst(
    isolation: BaseEventIsolation, updates: int, handler_s: float, apart_s: float
) -> tuple[float, bool]:
    """Seconds until all ``updates`` (arriving ``apart_s`` apart) are handled; in order?"""
    handled: list[int] = []

    async def update(index: int) -> None:
        async with isolation.lock(KEY):
            handled.append(index)
            await asyncio.sleep(handler_s)

    start = time.perf_counter()
    tasks = []
    for index in range(updates):
        tasks.append(asyncio.create_task(update(index)))
        await asyncio.sleep(apart_s)
    await asyncio.gather(*tasks)
    return time.perf_counter() - start, handled == sorted(handled)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--updates", type=int, default=5)
    parser.add_argument("--handler-ms", type=float, default=20.0)
    parser.add_argument("--apart-ms", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    redis = Redis.from_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    sides = {
        "redis lock alone": RedisEventIsolation(redis),
        "in order (ordered)": OrderedEventIsolation(RedisEventIsolation(redis)),
    }
    times: dict[str, list[float]] = {name: [] for name in sides}
    in_order: dict[str, int] = dict.fromkeys(sides, 0)
    for _ in range(args.rounds):
        for name, isolation in sides.items():
            seconds, ordered = await burst(
                isolation, args.updates, args.handler_ms / 1000, args.apart_ms / 1000
            )
            times[name].append(seconds)
            in_order[name] += ordered
    floor = args.updates * args.handler_ms / 1000
    print(
        f"{args.updates} updates of one user, {args.apart_ms:.0f} ms apart, each handled in "
        f"{args.handler_ms:.0f} ms (floor {floor * 1000:.0f} ms), {args.rounds} rounds:"
    )
    base = statistics.median(times["redis lock alone"])
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"  {name:20} median {median * 1000:6.0f} ms  ({median / base:.2f} of the lock "
            f"alone)  handled in order: {in_order[name]} of {args.rounds} rounds"
        )
    await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
