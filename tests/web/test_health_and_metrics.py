"""GET /healthz, /yookassa/health, /metrics."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from billing import operations
from billing.models import Operation, utcnow
from sandbox._common import free_port
from tests.web.conftest import Stack, StackFactory

HEALTH_TOKEN = "operator-health-token-for-tests"
AUTHORISED = {"Authorization": f"Bearer {HEALTH_TOKEN}"}


async def _get(stack: Stack, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    async with stack.http.get(stack.url + path, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_healthz_reports_database_and_redis(stack: Stack) -> None:
    status, body = await _get(stack, "/healthz")
    assert status == 200
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True and body["redis"]["ok"] is True


async def test_healthz_is_503_when_redis_does_not_answer(make_stack: StackFactory) -> None:
    stack = await make_stack(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    status, body = await _get(stack, "/healthz")
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["database"]["ok"] is True and body["redis"]["ok"] is False


async def test_yookassa_health_says_whether_it_is_configured(make_stack: StackFactory) -> None:
    stack = await make_stack(HEALTH_CHECK_TOKEN=HEALTH_TOKEN)
    assert await _get(stack, "/yookassa/health") == (200, {"configured": True, "status": "ok"})
    status, body = await _get(stack, "/yookassa/health?check=1", AUTHORISED)
    assert (status, body["api"]) == (200, "ok")
    assert await stack.yk.requests(operation="get")  # it really asked
    await stack.server.stop()

    bare = await make_stack(YOOKASSA_SHOP_ID=None, YOOKASSA_SECRET_KEY=None)
    assert await _get(bare, "/yookassa/health") == (
        503,
        {"configured": False, "status": "unavailable"},
    )


async def test_yookassa_health_check_reports_an_unreachable_api(make_stack: StackFactory) -> None:
    stack = await make_stack(
        YOOKASSA_API_URL=f"http://127.0.0.1:{free_port()}/v3", HEALTH_CHECK_TOKEN=HEALTH_TOKEN
    )
    status, body = await _get(stack, "/yookassa/health?check=1", AUTHORISED)
    assert status == 503
    assert body.pop("checked_seconds_ago") >= 0
    assert body == {"configured": True, "api": "unreachable", "status": "unavailable"}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_metrics_come_from_the_database_and_this_process(stack: Stack) -> None:
    user_id, tg_user = await stack.new_user(9501)
    paid = await stack.topup(user_id, amount=50_000)
    await stack.yk.mark_succeeded(paid.yookassa_payment_id)
    assert (await stack.yk.notify(paid.yookassa_payment_id))["status"] == 200
    dropped = await stack.topup(user_id, amount=20_000)
    await stack.yk.mark_canceled(dropped.yookassa_payment_id, reason="general_decline")
    assert (await stack.yk.notify(dropped.yookassa_payment_id))["status"] == 200
    await stack.topup(user_id, amount=10_000)  # still pending
    await stack.post_json({"not": "a notification"})

    # Two operations: one succeeded in 3 s, one failed and refunded.
    async with stack.sessionmaker() as session:
        ok = await operations.charge(session, stack.settings, user_id=user_id, op_type="upscale")
        bad = await operations.charge(session, stack.settings, user_id=user_id, op_type="retouch")
        await operations.claim_operation(session, operation_id=ok.operation_id)
        await operations.complete_operation(session, operation_id=ok.operation_id)
        now = utcnow()
        await session.execute(
            update(Operation)
            .where(Operation.id == ok.operation_id)
            .values(started_at=now - timedelta(seconds=3), finished_at=now)
        )
        await operations.refund_operation(session, operation_id=bad.operation_id, error="boom")
        await session.commit()

    async with stack.http.get(stack.url + "/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        m = _samples(await resp.text())

    assert m[("medialab_database_up", ())] == 1
    assert m[("medialab_payments_created_total", ())] == 3
    assert m[("medialab_payments_created_kopecks_total", ())] == 80_000
    assert m[("medialab_payments_credited_total", ())] == 1
    assert m[("medialab_payments_credited_kopecks_total", ())] == 50_000
    assert m[("medialab_payments_canceled_total", ())] == 1
    assert m[("medialab_payments_canceled_kopecks_total", ())] == 20_000
    assert m[("medialab_payments", (("status", "pending"),))] == 1
    assert m[("medialab_payments_amount_kopecks", (("status", "succeeded"),))] == 50_000
    assert m[("medialab_payments", (("status", "refunded"),))] == 0
    price = stack.settings.price_kopecks
    assert m[("medialab_ledger_entries_total", (("kind", "charge"),))] == 2
    assert m[("medialab_ledger_kopecks_total", (("kind", "charge"),))] == 2 * price
    assert m[("medialab_ledger_entries_total", (("kind", "refund"),))] == 1
    assert m[("medialab_ledger_kopecks_total", (("kind", "refund"),))] == price
    assert m[("medialab_ledger_kopecks_total", (("kind", "topup"),))] == 50_000
    assert (
        m[
            (
                "medialab_operations",
                (("funding", "balance"), ("status", "refunded"), ("type", "retouch")),
            )
        ]
        == 1
    )
    assert m[("medialab_operation_failures_total", (("type", "retouch"),))] == 1
    duration = "medialab_operation_duration_seconds"
    assert m[(f"{duration}_count", (("type", "upscale"),))] == 1
    assert abs(m[(f"{duration}_sum", (("type", "upscale"),))] - 3.0) < 0.01
    assert m[(f"{duration}_bucket", (("le", "2.0"), ("type", "upscale")))] == 0
    assert m[(f"{duration}_bucket", (("le", "5.0"), ("type", "upscale")))] == 1
    assert m[("medialab_users", ())] == 1
    assert m[("medialab_users_balance_kopecks", ())] == 50_000 - price
    # this process's own traffic
    webhook = (("method", "POST"), ("route", "/yookassa/webhook"))
    assert m[("medialab_web_requests_total", (*webhook, ("status", "200")))] == 2
    assert m[("medialab_web_requests_total", (*webhook, ("status", "400")))] == 1
    assert (
        m[
            (
                "medialab_webhook_notifications_total",
                (("event", "payment.succeeded"), ("outcome", "credited")),
            )
        ]
        == 1
    )
    assert (
        m[
            (
                "medialab_webhook_notifications_total",
                (("event", "payment.canceled"), ("outcome", "canceled")),
            )
        ]
        == 1
    )
    assert m[("medialab_webhook_rejections_total", (("reason", "no_type_or_event"),))] == 1
    assert (
        m[("medialab_web_request_duration_seconds_count", (("route", "/yookassa/webhook"),))] == 3
    )
    # the event-loop lag probe runs in the background of the app
    assert m[("medialab_web_event_loop_lag_seconds_count", ())] > 0
    assert tg_user.user_id == 9501


async def test_scrapes_close_together_add_up_the_tables_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from web import metrics

    reads = 0
    real = metrics.read_snapshot

    async def counted(session):  # type: ignore[no-untyped-def]
        nonlocal reads
        reads += 1
        return await real(session)

    monkeypatch.setattr(metrics, "read_snapshot", counted)
    monkeypatch.setattr(metrics, "SNAPSHOT_MAX_AGE", 3600.0)  # "close together", whatever load
    for _ in range(3):
        async with stack.http.get(stack.url + "/metrics") as resp:
            assert "medialab_database_up 1.0" in await resp.text()
    assert reads == 1
    monkeypatch.setattr(metrics, "SNAPSHOT_MAX_AGE", 0.0)
    async with stack.http.get(stack.url + "/metrics") as resp:
        assert resp.status == 200
    assert reads == 2
