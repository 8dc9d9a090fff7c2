"""The Redis check of the audit (and of the worker's start) reads keys that name operations by
``<id>-<token>``. A key whose id is not a plain ASCII number inside int64 is not one of ours:
"²" made ``int()`` raise and stopped the whole check, "١٢" was read as operation 12, and a
20-digit id reached PostgreSQL as an int64 overflow (a traceback from ``python -m billing
audit``)."""

from __future__ import annotations

import pytest
import redis as redis_lib

from billing.db import make_sessionmaker
from jobqueue import delivered
from jobqueue.queue import parse_job_id
from jobqueue.stale_keys import stale_redis_keys


@pytest.mark.parametrize(
    "job_id",
    ["op-²-abc", "op-١٢-abc", "op-99999999999999999999-abc", "op-0-abc", "op-012-abc"],
)
def test_a_job_id_whose_number_is_no_plain_int64_is_not_ours(job_id: str) -> None:
    assert parse_job_id(job_id) is None


def test_our_job_ids_still_parse() -> None:
    assert parse_job_id("op-12-" + "a" * 32) == (12, "a" * 32)
    assert parse_job_id("op-9223372036854775807") == (2**63 - 1, None)


async def test_the_redis_check_skips_keys_that_are_not_ours(engine, redis_url: str) -> None:
    client = redis_lib.Redis.from_url(redis_url)
    for number in ("²", "99999999999999999999", "١٢"):
        client.set(f"{delivered.PREFIX}{number}-{'b' * 32}", "{}")
    client.set(f"{delivered.PREFIX}7-{'c' * 32}", "{}")  # ours, of an operation not here
    try:
        async with make_sessionmaker(engine)() as session:
            stale = await stale_redis_keys(session, client)
    finally:
        client.close()
    assert [(item.operation_id, item.key) for item in stale] == [
        (7, f"{delivered.PREFIX}7-{'c' * 32}")
    ]
