"""``python -m workers`` on SIGTERM finishes the job it is running (the result is delivered
and the operation posted, nothing refunded) and then exits cleanly."""

from __future__ import annotations

import asyncio

import pytest

from billing.models import LedgerKind

# python -m workers itself: see tests/workers/conftest.py
pytestmark = pytest.mark.real_worker


async def test_sigterm_lets_the_running_job_finish(harness_factory, images) -> None:
    h = harness_factory()
    worker = h.start_worker()
    user = h.user()
    operation_id = await h.new_operation(
        user, "upscale", [await h.upload(user, images("astronaut.jpg"))], hook="sleep:3"
    )
    await h.wait_hook_pid(operation_id)
    worker.terminate()

    op = await h.wait_final(operation_id)
    assert op.status == "succeeded", f"{op.status}: {op.error}\n{h.logs()}"
    assert await h.entries(operation_id, LedgerKind.REFUND) == 0
    code = await asyncio.to_thread(worker.proc.wait, 60)
    assert code == 0, h.logs()
    assert "warm shut down requested" in worker.log()
