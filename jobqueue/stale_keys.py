"""Redis keys that name operations this database does not have.

Every Redis key the workers derive from an operation (its RQ job ``op-<id>-<token>``, its lock,
its "delivered" marker) names it by ``<id>-<key_token>`` (:func:`jobqueue.queue.key_name`).
A key whose id the database does not have, or has with another token, was left by another
database: one restored from a backup, recreated, or a new sandbox state beside a Redis that
served an older one. No operation of this database reads such a key (that is what the token
is for), but it says the two went apart: a "delivered" marker of an operation the database
lost is a result a user got and the books do not show; a job of such an operation is work
that will never be done. ``python -m workers`` logs them as errors at startup
(workers/stale_keys.py) and ``python -m billing audit`` prints them.

The check is one SCAN per key prefix (cursor-based, never KEYS) and one indexed query per
thousand ids. Keys of the form before key tokens (``op-<id>``, markers by bare id) are
reported only when their id is unknown: for a known id they cannot be told apart, and
nothing reads them any more.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from redis import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing.models import Operation
from jobqueue import delivered
from jobqueue.queue import JOB_PREFIX, LOCK_PREFIX, parse_job_id

# (key prefix, what such a key is); the rest of the key is "<id>-<token>" (or "<id>").
SCANNED = (
    ("rq:job:" + JOB_PREFIX, "RQ job"),
    (delivered.PREFIX, "delivered marker"),
    (LOCK_PREFIX, "operation lock"),
)
SCAN_COUNT = 1000
QUERY_CHUNK = 1000
LOGGED = 20  # at startup, lines beyond these are counted, not logged


@dataclass(frozen=True)
class StaleKey:
    key: str
    what: str
    operation_id: int
    key_token: str | None  # None: a key of the form before key tokens
    known_token: str | None  # the database's token for that id, None if it has no such id

    def describe(self) -> str:
        if self.known_token is None:
            why = f"operation {self.operation_id} is not in this database"
        else:
            why = f"operation {self.operation_id} of this database has another key token"
        return f"redis: {self.what} {self.key}: {why}"


def _scan(redis: Redis) -> list[tuple[str, str, int, str | None]]:
    """(key, what, operation id, token) of every operation key in Redis."""
    found = []
    for prefix, what in SCANNED:
        for raw in redis.scan_iter(match=f"{prefix}*", count=SCAN_COUNT):
            key = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
            # RQ's other keys of a job ("rq:job:<id>:dependents") do not parse: skipped.
            parsed = parse_job_id(JOB_PREFIX + key[len(prefix) :])
            if parsed is not None:
                found.append((key, what, parsed[0], parsed[1]))
    return found


async def stale_redis_keys(session: AsyncSession, redis: Redis) -> list[StaleKey]:
    """Every operation key in Redis that names an operation this database does not have."""
    found = await asyncio.to_thread(_scan, redis)
    ids = sorted({operation_id for _, _, operation_id, _ in found})
    tokens: dict[int, str] = {}
    for start in range(0, len(ids), QUERY_CHUNK):
        chunk = ids[start : start + QUERY_CHUNK]
        rows = await session.execute(
            select(Operation.id, Operation.key_token).where(Operation.id.in_(chunk))
        )
        tokens.update({row.id: row.key_token for row in rows})
    stale = []
    for key, what, operation_id, token in sorted(found, key=lambda f: (f[2], f[0])):
        known = tokens.get(operation_id)
        if known is None or (token is not None and token != known):
            stale.append(StaleKey(key, what, operation_id, token, known))
    return stale
