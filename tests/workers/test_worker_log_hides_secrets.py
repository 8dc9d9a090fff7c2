"""The worker process cleans its log of its secret settings: a secret that reaches a log
line anyway — here inside an exception that RQ's own logger prints with its traceback, in
the forked work-horse — is written as ``***``; so is it in what the worker stores: the
operation's error column and RQ's failure result in Redis."""

from __future__ import annotations

import pytest

from billing.models import LedgerKind
from tests.workers.test_bot_token_never_leaks import _unpacked, redis_hits

YOOKASSA_SECRET = "live_LEAKCHECK-yookassa-secret-4a9e"
FAL_KEY = "LEAKCHECK-fal-id:fal-secret-5c2d8b"

# python -m workers itself: see tests/workers/conftest.py
pytestmark = pytest.mark.real_worker


async def test_a_secret_in_an_exception_is_not_in_the_worker_log(harness_factory, images) -> None:
    h = harness_factory(JOB_RETRIES=0, FREE_OPERATIONS_COUNT=0)
    worker = h.start_worker(
        YOOKASSA_SHOP_ID="123456", YOOKASSA_SECRET_KEY=YOOKASSA_SECRET, FAL_KEY=FAL_KEY
    )
    await h.wait_ready(worker)
    user = h.user()
    await h.upload(user, images("hopper.jpg"))  # the user writes first: the chat exists
    # A file id that happens to hold the secrets: getFile refuses it, and the job's
    # exception ("getFile refused '<file id>'") names them.
    file_id = f"AgAD-{YOOKASSA_SECRET}-{FAL_KEY}"
    operation_id = await h.new_operation(user, "retouch", [file_id], balance=1000)

    op = await h.wait_final(operation_id)
    assert op.status == "refunded", f"{op.status}: {op.error}\n{h.logs()}"
    assert await h.entries(operation_id, LedgerKind.REFUND) == 1
    # The exception did carry them; the error column has them as *** ...
    assert "AgAD-***-***" in (op.error or ""), op.error
    assert YOOKASSA_SECRET not in (op.error or "") and FAL_KEY not in (op.error or "")

    async def traceback_logged() -> bool:
        return "exception raised while executing" in worker.log()

    await h.wait_until(traceback_logged, "RQ's traceback in the log")
    log = worker.log()
    # ... and the log printed the traceback, with the secrets as ***.
    assert "getFile refused 'AgAD-***-***'" in log, log
    for secret in (YOOKASSA_SECRET, FAL_KEY, FAL_KEY.partition(":")[2]):
        assert secret not in log, log
    # ... and so does RQ's stored failure (its traceback, kept for days). Only the job's own
    # arguments (the file id the test chose) may still hold them. RQ logs the traceback
    # (handle_exception) before it stores the failure (handle_job_failure): wait for both.

    async def traceback_stored() -> bool:
        hits = redis_hits(h.redis, b"getFile refused")
        return any(k.startswith("rq:results:") for k in hits)

    await h.wait_until(traceback_stored, "RQ's stored failure result")
    for secret in (YOOKASSA_SECRET, FAL_KEY, FAL_KEY.partition(":")[2]):
        found = redis_hits(h.redis, secret.encode())
        assert all(k.startswith("rq:job:") for k in found), (secret, found)
        for key in found:
            stored = h.redis.hget(key.split(" ")[0], "exc_info") or b""
            assert not any(secret.encode() in form for form in _unpacked(stored)), key
