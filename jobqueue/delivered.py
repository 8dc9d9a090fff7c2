"""The "delivered" marker: once a result has reached the chat, the operation must be posted,
never voided — even if the database write that posts it fails right then.

The marker lives in Redis (the database may be the thing that is down) from the moment
Telegram accepted the result until well past the operation's deadline. Every path that
would void an operation (the job's failure callback, the killed-horse handler, the sweeper)
and a retried job look at it first and post the hold instead.

The key names the operation by ``<id>-<key_token>`` (:func:`jobqueue.queue.key_name`): a
database that starts again from id 1 beside this Redis never finds an old operation's marker.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from jobqueue.queue import key_name

log = logging.getLogger(__name__)

PREFIX = "medialab:delivered:"
TTL_SECONDS = 7 * 24 * 3600


def mark(redis: Redis, operation_id: int, key_token: str, result_ref: dict[str, Any]) -> None:
    try:
        redis.set(key(operation_id, key_token), json.dumps(result_ref), ex=TTL_SECONDS)
    except RedisError as exc:  # the database post right after usually succeeds anyway
        log.error("operation %s: delivered marker not written: %s", operation_id, exc)


class MarkerUnreadable(RuntimeError):
    """Redis could not say whether the result was delivered: void nothing now. The caller's
    failure path leaves the operation as it is; the sweeper voids (or posts) it on a later
    pass, once Redis answers."""


def lookup(redis_url: str | None, operation_id: int, key_token: str) -> dict[str, Any] | None:
    """The result reference if this operation's result was delivered, else None.

    Raises :class:`MarkerUnreadable` when Redis does not answer: "not delivered" would be a
    guess, and a wrong guess refunds a result the user already has.
    """
    if not redis_url:
        return None
    try:
        client = Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        try:
            raw = client.get(key(operation_id, key_token))
        finally:
            client.close()
    except RedisError as exc:
        log.error("operation %s: delivered marker not readable: %s", operation_id, exc)
        raise MarkerUnreadable(f"operation {operation_id}: {exc}") from exc
    return parse(raw)


def key(operation_id: int, key_token: str) -> str:
    return f"{PREFIX}{key_name(operation_id, key_token)}"


def parse(raw: bytes | str | None) -> dict[str, Any] | None:
    """A marker's stored value as a result reference (``{}`` if unreadable), None if absent."""
    if raw is None:
        return None
    try:
        ref = json.loads(raw)
    except ValueError:
        return {}
    return ref if isinstance(ref, dict) else {}
