"""The operator API (/api/v1, issue 17) over real HTTP on the running web server: the token
rules (401, 403, 429), the keyed top-up (once per key, concurrently too), what each read
answers, the problem documents and the OpenAPI document."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

import pytest
from openapi_spec_validator import validate
from sqlalchemy import select

from billing import accounts, operations, plans, redaction, wallet
from billing.db import make_engine, make_sessionmaker
from billing.models import LedgerEntry, LedgerKind, PaymentStatus
from billing.payments import create_payment, mark_payment_canceled
from billing.settings import load_settings
from sandbox._common import free_port
from tests.web.conftest import Stack, StackFactory, stack_settings
from tg.factory import make_bot
from web.app import create_app

READ_SECRET = "r" * 20 + "-read-secret"
WRITE_SECRET = "w" * 20 + "-write-secret"
TOKENS = f"reader:read:{READ_SECRET},ops:write:{WRITE_SECRET}"
READ = {"Authorization": f"Bearer {READ_SECRET}"}
WRITE = {"Authorization": f"Bearer {WRITE_SECRET}"}
USER = 5001


@pytest.fixture
async def api(make_stack: StackFactory) -> Stack:
    return await make_stack(API_TOKENS=TOKENS)


async def call(
    stack: Stack,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    json: Any = None,
    **kwargs: Any,
) -> tuple[int, Any, Any]:
    async with stack.http.request(
        method, stack.url + "/api/v1" + path, headers=headers, json=json, **kwargs
    ) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers


def assert_problem(status: int, body: Any, headers: Any, expected: int) -> None:
    assert status == expected, body
    assert headers["Content-Type"].startswith("application/problem+json")
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    assert body["status"] == expected


async def new_user(stack: Stack, telegram_id: int = USER, *, free: int = 0) -> int:
    async with stack.sessionmaker() as session:
        user, _ = await accounts.get_or_create_user(
            session, telegram_id=telegram_id, free_operations=free
        )
        await session.commit()
    return user.id


async def adjustments(stack: Stack) -> list[LedgerEntry]:
    async with stack.sessionmaker() as session:
        return list(
            await session.scalars(
                select(LedgerEntry).where(LedgerEntry.kind == LedgerKind.ADJUSTMENT.value)
            )
        )


# -- tokens ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token-at-all-xxxxxxxx"},
        {"Authorization": f"Basic {READ_SECRET}"},
        {"Authorization": f"Bearer {READ_SECRET}x"},
    ],
)
async def test_no_valid_token_is_401_and_the_secret_is_never_logged(
    api: Stack, headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    await new_user(api)
    status, body, resp_headers = await call(api, "GET", f"/users/{USER}/balance", headers=headers)
    assert_problem(status, body, resp_headers, 401)
    assert resp_headers["WWW-Authenticate"].startswith("Bearer")
    assert "operator API refused (401)" in caplog.text
    assert READ_SECRET not in caplog.text and "not-a-token" not in caplog.text


async def test_a_read_token_may_not_write(api: Stack) -> None:
    await new_user(api)
    status, body, headers = await call(
        api,
        "POST",
        f"/users/{USER}/topup",
        headers={**READ, "Idempotency-Key": "k1"},
        json={"amount_kopecks": 1000, "reason": "ticket 1"},
    )
    assert_problem(status, body, headers, 403)
    assert await adjustments(api) == []
    assert await api.balance(await new_user(api)) == 0
    # ...and a write token may read.
    status, body, _ = await call(api, "GET", f"/users/{USER}/balance", headers=WRITE)
    assert status == 200 and body["balance_kopecks"] == 0


async def test_each_token_has_its_rate_limit(make_stack: StackFactory) -> None:
    stack = await make_stack(API_TOKENS=TOKENS, API_RATE_LIMIT_PER_MINUTE=3)
    statuses = [(await call(stack, "GET", "/plans", headers=READ))[0] for _ in range(3)]
    assert statuses == [200, 200, 200]
    status, body, headers = await call(stack, "GET", "/plans", headers=READ)
    assert_problem(status, body, headers, 429)
    assert 1 <= int(headers["Retry-After"]) <= 60
    # Another token has its own count.
    assert (await call(stack, "GET", "/plans", headers=WRITE))[0] == 200


def test_malformed_tokens_are_refused_at_start_without_their_secret() -> None:
    for value, why in [
        ("ops:admin:" + "s" * 20, "scope"),
        ("ops:write:short", "at least 16"),
        ("bad name:read:" + "s" * 20, "name"),
        (f"a:read:{'s' * 20},a:write:{'t' * 20}", "twice"),
        (f"a:read:{'s' * 20},b:write:{'s' * 20}", "same secret"),
    ]:
        with pytest.raises(ValueError, match=why) as caught:
            load_settings(_env_file=None, API_TOKENS=value)
        assert "s" * 20 not in str(caught.value)


# -- the top-up -----------------------------------------------------------------------------


async def test_a_topup_credits_once_per_key_with_the_token_name_in_the_ledger(
    api: Stack,
) -> None:
    user_id = await new_user(api)
    request = {"amount_kopecks": 25_000, "reason": " ticket #42 "}
    headers = {**WRITE, "Idempotency-Key": "ticket-42"}
    first = await call(api, "POST", f"/users/{USER}/topup", headers=headers, json=request)
    again = await call(api, "POST", f"/users/{USER}/topup", headers=headers, json=request)
    assert first[0] == again[0] == 200, (first, again)
    assert first[1] == again[1]
    assert first[2]["Idempotent-Replayed"] == "false"
    assert again[2]["Idempotent-Replayed"] == "true"
    assert first[1]["balance_kopecks"] == 25_000
    assert first[1]["reason"] == "api:ops: ticket #42"
    assert await api.balance(user_id) == 25_000
    (entry,) = await adjustments(api)
    assert entry.reason == "api:ops: ticket #42" and entry.amount == 25_000

    # The same key with another body (or for another user): 409, nothing more credited.
    other = await new_user(api, USER + 1)
    for path, body in [
        (f"/users/{USER}/topup", {"amount_kopecks": 26_000, "reason": "ticket #42"}),
        (f"/users/{USER}/topup", {"amount_kopecks": 25_000, "reason": "ticket #43"}),
        (f"/users/{USER + 1}/topup", request),
    ]:
        status, problem, resp_headers = await call(api, "POST", path, headers=headers, json=body)
        assert_problem(status, problem, resp_headers, 409)
    assert await api.balance(user_id) == 25_000 and await api.balance(other) == 0
    assert len(await adjustments(api)) == 1


async def test_concurrent_topups_with_one_key_credit_once(api: Stack) -> None:
    user_id = await new_user(api)
    headers = {**WRITE, "Idempotency-Key": "burst"}
    request = {"amount_kopecks": 1_000, "reason": "burst"}
    results = await asyncio.gather(
        *(
            call(api, "POST", f"/users/{USER}/topup", headers=headers, json=request)
            for _ in range(12)
        )
    )
    assert [r[0] for r in results] == [200] * 12
    assert sorted(r[2]["Idempotent-Replayed"] for r in results) == ["false"] + ["true"] * 11
    assert len({r[1]["entry_id"] for r in results}) == 1
    assert await api.balance(user_id) == 1_000
    assert len(await adjustments(api)) == 1


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({}, {"amount_kopecks": 100, "reason": "x"}, 400),  # no Idempotency-Key
        ({"Idempotency-Key": "k"}, {"amount_kopecks": 0, "reason": "x"}, 422),
        ({"Idempotency-Key": "k"}, {"amount_kopecks": 10**7 + 1, "reason": "x"}, 422),
        ({"Idempotency-Key": "k"}, {"amount_kopecks": 100, "reason": "   "}, 422),
        ({"Idempotency-Key": "k"}, {"amount_kopecks": 100, "reason": "a\x00b"}, 422),
        ({"Idempotency-Key": "k"}, {"amount_kopecks": "100", "reason": "x", "x": 1}, 422),
        ({"Idempotency-Key": "k" * 65}, {"amount_kopecks": 100, "reason": "x"}, 422),
    ],
)
async def test_a_bad_topup_changes_nothing(
    api: Stack, headers: dict[str, str], body: Any, expected: int
) -> None:
    user_id = await new_user(api)
    status, problem, resp_headers = await call(
        api, "POST", f"/users/{USER}/topup", headers={**WRITE, **headers}, json=body
    )
    assert_problem(status, problem, resp_headers, expected)
    assert await api.balance(user_id) == 0 and await adjustments(api) == []


async def test_malformed_json_and_other_media_types(api: Stack) -> None:
    await new_user(api)
    headers = {**WRITE, "Idempotency-Key": "k"}
    async with api.http.post(
        api.url + f"/api/v1/users/{USER}/topup",
        data=b'{"amount_kopecks": 1',
        headers={**headers, "Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 400
        assert (await resp.json(content_type=None))["type"].endswith("malformed-json")
    async with api.http.post(
        api.url + f"/api/v1/users/{USER}/topup", data="amount=1", headers=headers
    ) as resp:
        assert resp.status == 415
    assert await adjustments(api) == []


async def test_a_topup_of_an_unknown_user_is_404(api: Stack) -> None:
    status, body, headers = await call(
        api,
        "POST",
        "/users/999/topup",
        headers={**WRITE, "Idempotency-Key": "k"},
        json={"amount_kopecks": 100, "reason": "x"},
    )
    assert_problem(status, body, headers, 404)
    assert await adjustments(api) == []


# -- the reads ------------------------------------------------------------------------------


async def test_balance_limits_features_and_usage_read_through_billing(api: Stack) -> None:
    user_id = await new_user(api, free=1)
    async with api.sessionmaker() as session:
        await accounts.adjust(session, user_id=user_id, amount=5_000, reason="test money")
        await session.commit()
    for _ in range(3):  # one free, two from the balance
        async with api.sessionmaker() as session:
            charged = await operations.charge(
                session, api.settings, user_id=user_id, op_type="upscale"
            )
            await session.commit()
    async with api.sessionmaker() as session:  # the last one failed: given back
        await operations.refund_operation(session, operation_id=charged.operation_id)
        await session.commit()

    status, balance, _ = await call(api, "GET", f"/users/{USER}/balance", headers=READ)
    assert status == 200
    assert balance == {
        "telegram_id": USER,
        "balance_kopecks": 4_000,
        "currency": "RUB",
        "free_operations_left": 0,
        "free_operations_granted": 1,
    }

    status, usage, _ = await call(api, "GET", f"/users/{USER}/usage", headers=READ)
    assert status == 200
    rows = {(i["type"], i["source"]): i for i in usage["items"]}
    assert set(rows) == {("upscale", "free"), ("upscale", "balance")}
    assert rows[("upscale", "balance")]["operations"] == 2
    assert rows[("upscale", "balance")]["refunded"] == 1
    assert rows[("upscale", "balance")]["charged_kopecks"] == 1_000
    assert rows[("upscale", "balance")]["price_kopecks"] == 1_000
    assert rows[("upscale", "free")]["charged_kopecks"] == 0
    # A period before any of them: nothing.
    status, usage, _ = await call(
        api,
        "GET",
        f"/users/{USER}/usage",
        headers=READ,
        params={"since": "2020-01-01T00:00:00Z", "until": "2020-02-01T00:00:00+03:00"},
    )
    assert status == 200 and usage["items"] == []
    # A period that ends before it starts is empty; a date that is no date is refused.
    status, usage, _ = await call(
        api,
        "GET",
        f"/users/{USER}/usage",
        headers=READ,
        params={"since": "2099-01-01T00:00:00Z", "until": "2000-01-01T00:00:00Z"},
    )
    assert status == 200 and usage["items"] == []
    status, body, headers = await call(
        api, "GET", f"/users/{USER}/usage", headers=READ, params={"since": "yesterday"}
    )
    assert_problem(status, body, headers, 422)
    assert body["errors"][0]["location"] == "query.since"

    status, limits, _ = await call(api, "GET", f"/users/{USER}/limits", headers=READ)
    assert status == 200
    assert limits["free_operations"] == {"left": 0, "granted": 1, "renews_at": None}
    assert limits["subscription"] is None and limits["packages"] == []

    # A subscription and a package: their units left and when they reset or expire.
    async with api.sessionmaker() as session:
        await accounts.adjust(session, user_id=user_id, amount=30_000, reason="test money")
        for code in ("pro", "pack10"):
            await plans.buy_plan_from_balance(
                session, api.settings, user_id=user_id, plan_code=code, request_key=code
            )
        await session.commit()
        held = await wallet.wallet(session, api.settings, user_id=user_id)
    assert held.subscription is not None and held.subscription.ends_at is not None
    status, limits, _ = await call(api, "GET", f"/users/{USER}/limits", headers=READ)
    assert status == 200
    sub = limits["subscription"]
    assert (sub["plan"], sub["units_left"], sub["units_per_period"], sub["due"]) == (
        "pro",
        30,
        30,
        False,
    )
    assert datetime.fromisoformat(sub["ends_at"]) == held.subscription.ends_at
    assert [(p["plan"], p["units_left"]) for p in limits["packages"]] == [("pack10", 10)]
    assert limits["package_units_left"] == 10
    assert limits["discount_percent"] == 10

    status, features, _ = await call(api, "GET", f"/users/{USER}/features", headers=READ)
    assert status == 200
    by_type = {f["type"]: f for f in features["operations"]}
    assert by_type["upscale"] == {
        "type": "upscale",
        "unlocked": True,
        "units": 1,
        "price_kopecks": 900,  # the pro plan's 10 % off
    }
    assert by_type["add_text"]["units"] == 0


async def test_an_unknown_user_and_an_unknown_path_are_problems(api: Stack) -> None:
    for path, expected in [
        ("/users/424242/balance", 404),
        ("/users/0/balance", 422),
        ("/users/abc/limits", 422),
        ("/users/9223372036854775808/features", 422),
        ("/nothing-here", 404),
    ]:
        status, body, headers = await call(api, "GET", path, headers=READ)
        assert_problem(status, body, headers, expected)
    status, body, headers = await call(api, "DELETE", "/plans", headers=READ)
    assert_problem(status, body, headers, 405)
    assert "GET" in headers["Allow"]


async def test_plans_and_payments_by_status_a_page_at_a_time(api: Stack) -> None:
    user_id = await new_user(api)
    status, plans, _ = await call(api, "GET", "/plans", headers=READ)
    assert status == 200 and plans["items"]
    assert any(p["is_default"] for p in plans["items"])

    async with api.sessionmaker() as session:
        ids = []
        for amount in (1_000, 2_000, 3_000, 4_000, 5_000):
            payment = await create_payment(session, user_id=user_id, amount=amount, currency="RUB")
            ids.append(payment.id)
        await mark_payment_canceled(session, payment_id=ids[1], reason="expired_on_confirmation")
        await session.commit()
    pages: list[list[int]] = []
    before = None
    while True:
        params: dict[str, Any] = {"status": "pending", "limit": 2}
        if before is not None:
            params["before"] = before
        status, page, _ = await call(api, "GET", "/payments", headers=READ, params=params)
        assert status == 200
        pages.append([p["id"] for p in page["items"]])
        assert all(p["status"] == "pending" and p["telegram_id"] == USER for p in page["items"])
        before = page["next_before"]
        if before is None:
            break
    assert pages == [[ids[4], ids[3]], [ids[2], ids[0]]]
    status, page, _ = await call(
        api, "GET", "/payments", headers=READ, params={"status": PaymentStatus.CANCELED.value}
    )
    assert [p["id"] for p in page["items"]] == [ids[1]]
    status, body, headers = await call(
        api, "GET", "/payments", headers=READ, params={"status": "lost"}
    )
    assert_problem(status, body, headers, 422)


# -- the document ---------------------------------------------------------------------------


async def test_the_openapi_document_is_valid_3_1_and_made_from_the_models(
    api: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with api.http.get(api.url + "/api/v1/openapi.json") as resp:
        assert resp.status == 200
        doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    validate(doc)  # openapi-spec-validator: a 3.1 document, its schemas 2020-12
    operations_ = {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if path != "/api/v1/openapi.json"
    }
    assert operations_ == {
        ("GET", "/api/v1/users/{telegram_id}/balance"),
        ("GET", "/api/v1/users/{telegram_id}/usage"),
        ("GET", "/api/v1/users/{telegram_id}/limits"),
        ("GET", "/api/v1/users/{telegram_id}/features"),
        ("POST", "/api/v1/users/{telegram_id}/topup"),
        ("GET", "/api/v1/plans"),
        ("GET", "/api/v1/payments"),
    }
    # The server's own bound (ADMIN_ADJUST_MAX_RUB) is what the document states.
    topup = doc["components"]["schemas"]["TopUpRequest"]
    assert topup["properties"]["amount_kopecks"]["maximum"] == 100_000 * 100
    assert doc["components"]["schemas"]["Problem"]["required"] == [
        "type",
        "title",
        "status",
        "detail",
        "instance",
    ]
    assert READ_SECRET not in str(doc) and WRITE_SECRET not in str(doc)


def test_each_token_secret_is_redacted_from_the_logs() -> None:
    settings = load_settings(_env_file=None, API_TOKENS=TOKENS)
    text = f"a line that quotes {WRITE_SECRET} and {READ_SECRET} alone"
    cleaned = redaction.redact_text(
        text, redaction.secret_forms(redaction.secret_values(settings))
    )
    assert WRITE_SECRET not in cleaned and READ_SECRET not in cleaned


async def test_without_redis_the_rate_limit_lets_requests_through(
    make_stack: StackFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # Redis only helps: the API answers from the database when Redis does not answer.
    stack = await make_stack(
        API_TOKENS=TOKENS,
        API_RATE_LIMIT_PER_MINUTE=1,
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
    )
    statuses = [(await call(stack, "GET", "/plans", headers=READ))[0] for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert "rate limit not checked (Redis" in caplog.text


@pytest.mark.parametrize("path", ["/api/v1", "/api/v1/telegram"])
def test_a_telegram_webhook_path_under_the_api_is_refused(
    db_url: str,
    redis_url: str,
    emulators,  # type: ignore[no-untyped-def]
    path: str,
) -> None:
    yk, tg = emulators
    settings = stack_settings(
        db_url,
        redis_url,
        yk.url,
        tg.url,
        TELEGRAM_WEBHOOK_URL=f"https://example.org{path}",
        TELEGRAM_WEBHOOK_SECRET="s" * 32,
    )
    with pytest.raises(ValueError, match="collides"):
        create_app(settings, bot=make_bot(settings), dispatcher=object())  # type: ignore[arg-type]


async def test_a_failure_inside_is_a_problem_document_without_its_insides(
    make_stack: StackFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # A database that does not answer: the handler fails, the answer says nothing of why.
    dead = make_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing")
    try:
        stack = await make_stack(API_TOKENS=TOKENS, sessionmaker=make_sessionmaker(dead))
        status, body, headers = await call(stack, "GET", f"/users/{USER}/balance", headers=READ)
    finally:
        await dead.dispose()
    assert_problem(status, body, headers, 500)
    assert "127.0.0.1" not in body["detail"] and "Error" not in body["detail"]
    assert "operator API: unhandled error on GET" in caplog.text
