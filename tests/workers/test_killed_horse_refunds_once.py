"""A work-horse killed with SIGKILL calls no failure callback: the worker's
work-horse-killed handler leaves the job to RQ's retry while one is left, and refunds once
after the last attempt's horse is killed too."""

from __future__ import annotations

import os
import signal

import pytest

from billing import accounts
from billing.models import LedgerKind

# python -m workers itself: see tests/workers/conftest.py
pytestmark = pytest.mark.real_worker


async def test_killed_horse_is_retried_then_refunded_once(harness_factory, images) -> None:
    h = harness_factory(JOB_RETRIES=1)
    worker = h.start_worker()
    user = h.user()
    operation_id = await h.new_operation(
        user, "upscale", [await h.upload(user, images("astronaut.jpg"))], hook="sleep:120"
    )

    first = await h.wait_hook_pid(operation_id, attempt=1)
    os.kill(first, signal.SIGKILL)
    second = await h.wait_hook_pid(operation_id, attempt=2)  # RQ retried it
    assert second != first
    op = await h.operation(operation_id)
    assert op.status == "running" and await h.entries(operation_id, LedgerKind.REFUND) == 0

    os.kill(second, signal.SIGKILL)
    notice = await h.wait_message(user, lambda m: "возвращена" in m.text, "notice")
    assert notice.text == (
        "❌ Не получилось: обработчик аварийно остановился.\n"
        "Бесплатная операция возвращена. Осталось бесплатных: 4."
    )
    op = await h.wait_final(operation_id)
    assert op.status == "refunded" and op.attempts == 2
    assert op.error.startswith("crashed")
    assert await h.entries(operation_id, LedgerKind.REFUND) == 1
    assert worker.alive(), "the worker survives its horse"
    assert "Work horse killed for job op-" in h.logs()


async def test_a_failed_free_operation_says_nothing_was_charged(harness_factory, images) -> None:
    """📝 add_text costs nothing: its failure is "failed", with no refund entry and no money
    or free operation to give back."""
    h = harness_factory(JOB_RETRIES=0, FREE_OPERATIONS_COUNT=2)
    h.start_worker()
    user = h.user()
    operation_id = await h.new_operation(
        user, "add_text", [await h.upload(user, images("coffee.jpg"))], text="Привет", hook="crash"
    )
    notice = await h.wait_message(user, lambda m: "Ничего не списано" in m.text, "notice")
    assert notice.text == (
        "❌ Не получилось: обработчик аварийно остановился.\nНичего не списано."
    )
    op = await h.wait_final(operation_id)
    assert op.status == "failed" and op.funding == "none" and op.price == 0
    assert await h.entries(operation_id, LedgerKind.REFUND) == 0
    async with h.sessionmaker() as session:
        account = await accounts.find_user_by_telegram_id(session, user.user_id)
    assert account is not None
    assert (account.balance, account.free_left) == (0, 2)
