"""A database that starts again beside a Redis that kept its keys (restored from a backup,
recreated, a new sandbox state) reuses operation ids. Every Redis key derived from an
operation carries its random key token, so a new operation never meets an old one's
"delivered" marker, lock or job: it is delivered and charged as any other. The keys of the
old database are reported (the worker at startup, ``python -m billing audit``)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from rq.job import Callback

from billing import accounts
from billing.models import LedgerKind
from jobqueue import delivered
from jobqueue.queue import JOB_FUNCTION, job_id_for, media_queue
from jobqueue.stale_keys import stale_redis_keys
from tests.conftest import clean_tables

ROOT_MARKER = delivered.PREFIX


async def _photo_ids(user) -> list[int]:  # type: ignore[no-untyped-def]
    return [m.message_id for m in await user.bot_messages() if m.photo]


async def _succeeded_with_photo(h, user, operation_id: int) -> int:  # type: ignore[no-untyped-def]
    op = await h.wait_final(operation_id)
    assert op.status == "succeeded", f"{op.status}: {op.error}\n{h.logs()}"
    photo = op.result_ref["photo_message_id"]
    assert photo in await _photo_ids(user), f"operation {operation_id}: no photo in the chat"
    assert await h.entries(operation_id, LedgerKind.CHARGE) == 1
    assert await h.entries(operation_id, LedgerKind.REFUND) == 0
    return photo


async def test_operations_of_a_database_that_started_again_are_delivered(
    harness_factory, images, db_url
) -> None:
    h = harness_factory(FREE_OPERATIONS_COUNT=1)
    worker = h.start_worker()
    user = h.user()
    photo = images("hopper.jpg")

    # The first database: a free and a paid operation, delivered.
    first = [
        await h.new_operation(user, "upscale", [await h.upload(user, photo)], hook="noop"),
        await h.new_operation(
            user, "upscale", [await h.upload(user, photo)], hook="noop", balance=1000
        ),
    ]
    assert first == [1, 2]
    old_photos = [await _succeeded_with_photo(h, user, i) for i in first]
    # With no worker running, a third is queued: the database will lose it.
    await asyncio.to_thread(worker.stop)
    assert (
        await h.new_operation(
            user, "upscale", [await h.upload(user, photo)], hook="noop", balance=1000
        )
        == 3
    )
    old = {i: (await h.operation(i)).key_token for i in (1, 2, 3)}
    assert all(h.redis.exists(delivered.key(i, old[i])) for i in first)

    # The database starts again from id 1; Redis keeps everything.
    clean_tables(db_url)

    # The new database: the same ids, the same user (a newcomer again), one free and two
    # paid, queued behind the old database's job of operation 3; then a worker starts.
    again = [
        await h.new_operation(user, "upscale", [await h.upload(user, photo)], hook="noop"),
        await h.new_operation(
            user, "upscale", [await h.upload(user, photo)], hook="noop", balance=1000
        ),
        await h.new_operation(
            user, "upscale", [await h.upload(user, photo)], hook="noop", balance=1000
        ),
    ]
    assert again == [1, 2, 3]
    restarted = h.start_worker()
    new = {i: (await h.operation(i)).key_token for i in again}
    assert not set(new.values()) & set(old.values())
    new_photos = [await _succeeded_with_photo(h, user, i) for i in again]
    assert not set(new_photos) & set(old_photos)
    assert len(await _photo_ids(user)) == 5, "a photo in the chat for each operation"
    async with h.sessionmaker() as session:
        account = await accounts.find_user_by_telegram_id(session, user.user_id)
    assert account is not None and (account.balance, account.free_left) == (0, 0)
    # The old database's queued job ran on the new one and did nothing (it claimed nothing).
    await h.wait_until(
        lambda: _logged(h, f"Job OK ({job_id_for(3, old[3])})"), "the old job of operation 3"
    )
    assert (
        "operation 3: this job was queued for an operation of another database "
        "(another key token here)"
    ) in h.logs()
    assert (await h.operation(3)).attempts == 1

    # The old database's keys are reported: by the worker when it started ...
    log = restarted.log()
    for i in first:
        assert f"ERROR redis: delivered marker {delivered.key(i, old[i])}" in log, log
    # ... and by the check, which knows them from the new database's own keys.
    async with h.sessionmaker() as session:
        stale = await stale_redis_keys(session, h.redis)
    named = {(s.what, s.operation_id, s.key_token) for s in stale}
    assert {("delivered marker", i, old[i]) for i in first} <= named
    assert {("RQ job", i, old[i]) for i in (1, 2, 3)} <= named
    assert all(s.known_token == new[s.operation_id] for s in stale)
    assert not {token for _, _, token in named} & set(new.values())

    # ... and by the operator's audit, which exits non-zero.
    env = h.worker_env()
    audit = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "billing", "audit"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert audit.returncode == 1, audit.stdout + audit.stderr
    assert (
        f"redis: delivered marker {delivered.key(1, old[1])}: operation 1 of this database "
        "has another key token"
    ) in audit.stdout
    assert f"redis: RQ job rq:job:{job_id_for(3, old[3])}" in audit.stdout
    assert f"audit: {len(stale)} problem(s)" in audit.stdout


async def _logged(h, text: str) -> bool:  # type: ignore[no-untyped-def]
    return text in h.logs()


async def test_a_job_queued_before_key_tokens_still_runs(harness_factory, images) -> None:
    """A job the previous version queued (``op-<id>``, no token in its arguments) is run: the
    worker takes the token from the operation's row, and its marker carries it."""
    h = harness_factory(FREE_OPERATIONS_COUNT=1)
    worker = h.start_worker()
    user = h.user()
    file_ids = [await h.upload(user, images("hopper.jpg"))]
    operation_id = await h.new_operation(user, "upscale", file_ids, hook="noop", enqueue=False)
    job = media_queue(h.redis, h.settings).enqueue(
        JOB_FUNCTION,
        operation_id,
        file_ids,
        job_id=f"op-{operation_id}",
        job_timeout=h.settings.JOB_TIMEOUT_SECONDS,
        on_failure=Callback("workers.jobs.on_job_failure", timeout=60),
        result_ttl=3600,
    )
    await _succeeded_with_photo(h, user, operation_id)
    token = (await h.operation(operation_id)).key_token
    marker = h.redis.get(delivered.key(operation_id, token))
    assert marker is not None and json.loads(marker)["photo_message_id"]
    assert not h.redis.exists(f"{ROOT_MARKER}{operation_id}")
    assert job.id == f"op-{operation_id}" and worker.alive()


async def test_the_failure_paths_of_another_databases_job_void_nothing(
    harness_factory, images, monkeypatch
) -> None:
    """A failed (or killed) job whose token is not its operation's was queued for another
    database's operation of that id: the operation of this one is not voided. A marker under
    another token is not this operation's: the sweeper's void refunds it."""
    from workers import refunds, runtime
    from workers.failures import Failure

    h = harness_factory(FREE_OPERATIONS_COUNT=0)
    monkeypatch.setattr(runtime, "_settings", h.settings)
    user = h.user()
    operation_id = await h.new_operation(
        user,
        "upscale",
        [await h.upload(user, images("hopper.jpg"))],
        balance=1000,
        enqueue=False,
    )
    other = "f" * 32
    assert h.tokens[operation_id] != other
    failure = Failure("crashed", True)
    assert (
        await refunds.refund_and_notify(h.settings, operation_id, failure, key_token=other) is None
    )
    assert (await h.operation(operation_id)).status == "queued"
    assert await h.entries(operation_id, LedgerKind.REFUND) == 0

    delivered.mark(h.redis, operation_id, other, {"photo_message_id": 4242})
    refund = await refunds.refund_and_notify(h.settings, operation_id, failure)
    assert refund is not None and refund.amount == 1000
    op = await h.operation(operation_id)
    assert op.status == "refunded" and op.result_ref is None
    assert await h.entries(operation_id, LedgerKind.REFUND) == 1
