"""The database goes away in the middle of a notification: 503, and YooKassa's retry, once
the database is back, credits exactly once; a restart nobody saw costs no notification. Runs
on a PostgreSQL server of its own, with the web server's own engine configuration."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from billing.db import make_sessionmaker
from billing.models import LedgerKind
from tests.conftest import assert_audit_clean
from tests.web.conftest import StackFactory, wait_until
from tests.web.own_postgres import OwnPostgres
from web.app import make_web_engine


@pytest.fixture
async def own_postgres() -> AsyncIterator[OwnPostgres]:
    server = await asyncio.to_thread(lambda: OwnPostgres().init())
    try:
        yield server
    finally:
        await asyncio.to_thread(server.destroy)


async def test_database_stopped_during_a_notification_then_the_retry_credits_once(
    make_stack: StackFactory, own_postgres: OwnPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_web_engine(own_postgres.url)
    try:
        stack = await make_stack(sessionmaker=make_sessionmaker(engine))
        user_id, tg_user = await stack.new_user(9401)
        started = await stack.topup(user_id, amount=70_000)
        await stack.yk.mark_succeeded(started.yookassa_payment_id)

        # The API answer is slow; while the server waits for it, the database stops.
        await stack.yk.delay_next(1.5, only="get")
        delivery = asyncio.create_task(stack.yk.notify(started.yookassa_payment_id))

        async def asked_the_api() -> bool:
            return bool(await stack.yk.requests(operation="get"))

        await wait_until(asked_the_api)
        await asyncio.to_thread(own_postgres.stop)
        note = await delivery
        assert note["status"] == 503
        assert "retry_later" in note["attempts"][-1]["response"]
        assert "Traceback" not in note["attempts"][-1]["response"]
        assert any("transient failure" in r.getMessage() for r in caplog.records)

        # While it is down: more deliveries get 503, health says so.
        assert (await stack.yk.notify(started.yookassa_payment_id))["status"] == 503
        async with stack.http.get(stack.url + "/healthz") as resp:
            assert resp.status == 503
            health = await resp.json()
        assert health["database"]["ok"] is False and health["redis"]["ok"] is True

        await asyncio.to_thread(own_postgres.start)
        retry = await stack.yk.notify(started.yookassa_payment_id)
        assert retry["status"] == 200
        assert await stack.balance(user_id) == 70_000
        assert await stack.ledger_count(LedgerKind.TOPUP) == 1
        # and once more for good measure: nothing changes
        assert (await stack.yk.notify(started.yookassa_payment_id))["status"] == 200
        assert await stack.balance(user_id) == 70_000

        await tg_user.wait_for_text("Баланс пополнен")
        await stack.settle()
        assert len(await stack.sent_texts(9401)) == 1
        async with stack.http.get(stack.url + "/healthz") as resp:
            assert resp.status == 200
        await assert_audit_clean(engine)
    finally:
        await engine.dispose()


async def test_metrics_still_answer_with_the_database_down(
    make_stack: StackFactory, own_postgres: OwnPostgres
) -> None:
    engine = make_web_engine(own_postgres.url)
    try:
        stack = await make_stack(sessionmaker=make_sessionmaker(engine))
        async with stack.http.get(stack.url + "/metrics") as resp:
            assert "medialab_database_up 1.0" in await resp.text()
        await asyncio.to_thread(own_postgres.stop)
        async with stack.http.get(stack.url + "/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
        assert "medialab_database_up 0.0" in text
        assert "medialab_payments_created_total" not in text
        assert "medialab_web_requests_total" in text
    finally:
        await engine.dispose()


async def test_database_restarted_while_idle_then_the_next_notification_credits(
    make_stack: StackFactory, own_postgres: OwnPostgres
) -> None:
    """No request runs while PostgreSQL restarts, so every pooled connection is dead when the
    next notification arrives, and too recently used to be pinged: the checkout must see that
    the server closed them and connect anew, not answer 503."""
    engine = make_web_engine(own_postgres.url)
    try:
        stack = await make_stack(sessionmaker=make_sessionmaker(engine))
        user_id, tg_user = await stack.new_user(9402)
        first = await stack.topup(user_id, amount=10_000)
        second = await stack.topup(user_id, amount=20_000)
        for started in (first, second):
            await stack.yk.mark_succeeded(started.yookassa_payment_id)
        assert (await stack.yk.notify(first.yookassa_payment_id))["status"] == 200
        assert engine.sync_engine.pool.checkedin() >= 1

        await asyncio.to_thread(own_postgres.stop)
        await asyncio.to_thread(own_postgres.start)

        note = await stack.yk.notify(second.yookassa_payment_id)
        assert note["status"] == 200, note["attempts"][-1]
        assert await stack.balance(user_id) == 30_000
        assert await stack.ledger_count(LedgerKind.TOPUP) == 2
        await tg_user.wait_for_text("Баланс пополнен")
        await stack.settle()
        await assert_audit_clean(engine)
    finally:
        await engine.dispose()
