"""One execution of an operation at a time: a Redis lock taken by a Lua script.

A job enqueued twice or a horse that outlived its worker must not run the operation a second
time. The lock's value names the holder's pid, so the worker can free the lock of a horse it
saw die; its TTL (the operation's deadline) frees the lock of a worker that died with it.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from redis import Redis

from jobqueue import delivered
from jobqueue.queue import LOCK_PREFIX, key_name

# Take the lock (KEYS[1]) if it is free; if taken, also return the marker KEYS[2] (or nil).
_ACQUIRE = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return {0}
end
return {1, redis.call('GET', KEYS[2])}
"""

# Delete the key if its value starts with ARGV[1] (the holder's "pid:" or its whole value).
_RELEASE = """
local v = redis.call('GET', KEYS[1])
if v and (ARGV[1] == '' or string.sub(v, 1, string.len(ARGV[1])) == ARGV[1]) then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def lock_key(operation_id: int, key_token: str) -> str:
    return f"{LOCK_PREFIX}{key_name(operation_id, key_token)}"


class OperationLock:
    """The lock of one operation, held by this process."""

    def __init__(self, redis: Redis, operation_id: int, key_token: str, ttl: int) -> None:
        self.redis = redis
        self.operation_id = operation_id
        self.key_token = key_token
        self.key = lock_key(operation_id, key_token)
        self.ttl = ttl
        self.value = f"{os.getpid()}:{uuid.uuid4().hex}"
        # Read with the lock, in the same round trip: the "delivered" marker (delivered.py).
        self.delivered: dict[str, Any] | None = None

    def acquire(self) -> bool:
        reply = self.redis.eval(
            _ACQUIRE,
            2,
            self.key,
            delivered.key(self.operation_id, self.key_token),
            self.value,
            self.ttl,
        )
        if not reply or not int(reply[0]):
            return False
        self.delivered = delivered.parse(reply[1] if len(reply) > 1 else None)
        return True

    def release(self) -> None:
        self.redis.eval(_RELEASE, 1, self.key, self.value)


def release_lock(
    redis: Redis, operation_id: int, key_token: str, *, holder_pid: int | None
) -> None:
    """Free an operation's lock if the process ``holder_pid`` holds it (anyone's if None)."""
    prefix = f"{holder_pid}:" if holder_pid is not None else ""
    redis.eval(_RELEASE, 1, lock_key(operation_id, key_token), prefix)


def is_held(redis: Redis, operation_id: int, key_token: str) -> bool:
    """Whether some execution holds the operation's lock."""
    return bool(redis.exists(lock_key(operation_id, key_token)))
