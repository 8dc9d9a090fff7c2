"""Once per Telegram update (or per button shown): what must not happen twice when Telegram
re-delivers an update or a user taps twice — opening a second YooKassa payment."""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

ONCE_TTL_SECONDS = 24 * 3600


async def first_delivery(redis: Redis, key: str) -> bool:
    """False when this update was already handled (Telegram re-delivers updates): a
    re-delivered amount must not open a second YooKassa payment. Redis down: assume it is
    the first (a duplicate payment is never paid twice by accident; a lost top-up is worse).
    """
    try:
        first = bool(await redis.set(f"once:{key}", 1, nx=True, ex=ONCE_TTL_SECONDS))
    except (RedisError, OSError) as exc:
        log.warning("re-delivery check skipped, Redis error: %s", exc)
        return True
    if not first:
        log.info("re-delivered update ignored: %s", key)
    return first
