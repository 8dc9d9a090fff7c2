"""The worker's startup check of Redis keys of operations this database does not have
(the scan is :mod:`jobqueue.stale_keys`, shared with ``python -m billing audit``)."""

from __future__ import annotations

import asyncio
import logging

from redis import Redis

from billing.db import make_sessionmaker
from billing.settings import Settings
from jobqueue.stale_keys import LOGGED, StaleKey, stale_redis_keys

log = logging.getLogger(__name__)


def log_stale_keys(settings: Settings) -> list[StaleKey]:
    """The worker's startup check: each stale key logged as an error (the first
    :data:`LOGGED`, then how many more). Never raises: a check that cannot run is a warning."""
    from workers import runtime  # the worker's engine, given back before the first fork

    async def run() -> list[StaleKey]:
        engine = runtime.take_engine(settings)
        try:
            redis = Redis.from_url(settings.REDIS_URL, socket_timeout=10, socket_connect_timeout=5)
            try:
                async with make_sessionmaker(engine)() as session:
                    return await stale_redis_keys(session, redis)
            finally:
                redis.close()
        finally:
            try:
                await engine.dispose()
            finally:
                runtime.give_back_engine(engine)

    try:
        stale = asyncio.run(run())
    except Exception as exc:  # noqa: BLE001 - only a check; the database or Redis may be down
        log.warning("redis keys of other databases: not checked: %s", exc)
        return []
    for item in stale[:LOGGED]:
        log.error("%s", item.describe())
    if len(stale) > LOGGED:
        log.error("redis: %s more keys of operations not in this database", len(stale) - LOGGED)
    if stale:
        log.error(
            "redis: %s keys name operations this database does not have: was the database "
            "restored or recreated beside this Redis? (`python -m billing audit` lists them)",
            len(stale),
        )
    return stale
