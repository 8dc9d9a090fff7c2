"""What the gateway makes of YooKassa's answer to a payment lookup: the API's JSON as it came
(checked by the SDK's response model), or a GatewayRejected for an answer that is not a
payment — never an exception of the SDK's own."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from billing.yookassa import (
    GatewayRejected,
    GatewayUnavailable,
    ProviderPaymentNotFound,
    YooKassaGateway,
)
from sandbox._common import ServerHandle
from tests.conftest import make_settings

PAYMENT_ID = "2f5a1e9c-000f-5000-9000-1b2c3d4e5f60"


def _payment(**changes: Any) -> dict[str, Any]:
    payment: dict[str, Any] = {
        "id": PAYMENT_ID,
        "status": "succeeded",
        "paid": True,
        "amount": {"value": "150.00", "currency": "RUB"},
        "created_at": "2026-12-06T10:00:00.000Z",
        "metadata": {"payment_row_id": "7", "user_id": "3"},
        "recipient": {"account_id": "100500", "gateway_id": "1"},
        "refundable": True,
        "test": True,
        "a_field_this_sdk_does_not_know": {"kept": "yes"},
    }
    payment.update(changes)
    return payment


async def _gateway_answering(answer: Any, db_url: str):  # noqa: ANN202
    async def find(request: web.Request) -> web.Response:
        assert request.match_info["id"] == PAYMENT_ID
        return web.json_response(answer)

    app = web.Application()
    app.router.add_get("/v3/payments/{id}", find)
    return app


@pytest.fixture
def settings_for(db_url: str):  # noqa: ANN201
    def build(url: str):  # noqa: ANN202
        return make_settings(
            db_url,
            YOOKASSA_SHOP_ID="100500",
            YOOKASSA_SECRET_KEY="secret",
            YOOKASSA_API_URL=f"{url}/v3",
            YOOKASSA_TIMEOUT=2,
        )

    return build


async def test_a_payment_comes_back_as_the_api_sent_it(settings_for, db_url) -> None:
    async with ServerHandle(await _gateway_answering(_payment(), db_url)) as server:
        found = await YooKassaGateway(settings_for(server.url)).fetch_payment(PAYMENT_ID)
    assert found.id == PAYMENT_ID and found.status == "succeeded" and found.paid
    assert found.amount == 15000 and found.currency == "RUB"
    assert found.metadata == {"payment_row_id": "7", "user_id": "3"}
    assert found.raw["a_field_this_sdk_does_not_know"] == {"kept": "yes"}


@pytest.mark.parametrize(
    "answer",
    [
        _payment(amount={"value": "сто", "currency": "RUB"}),
        _payment(amount={"value": "1.005", "currency": "RUB"}),
        _payment(amount="150.00"),
        _payment(amount={"value": "Infinity", "currency": "RUB"}),
        _payment(recipient=["100500"]),
        _payment(id=None),
        _payment(status=7),
        [_payment()],
        "a payment",
    ],
    ids=[
        "amount-not-a-number",
        "amount-past-kopecks",
        "amount-not-an-object",
        "amount-infinite",
        "recipient-a-list",
        "no-id",
        "status-a-number",
        "a-list",
        "a-string",
    ],
)
async def test_an_answer_that_is_not_a_payment_is_rejected(answer, settings_for, db_url) -> None:
    async with ServerHandle(await _gateway_answering(answer, db_url)) as server:
        with pytest.raises(GatewayRejected):
            await YooKassaGateway(settings_for(server.url)).fetch_payment(PAYMENT_ID)


async def test_the_apis_not_found_is_not_found_and_the_api_answers(settings_for) -> None:
    async def not_found(request: web.Request) -> web.Response:
        body = {"type": "error", "id": "e1", "code": "not_found", "description": "no such"}
        return web.json_response(body, status=404)

    app = web.Application()
    app.router.add_get("/v3/payments/{id}", not_found)
    async with ServerHandle(app) as server:
        gateway = YooKassaGateway(settings_for(server.url))
        with pytest.raises(ProviderPaymentNotFound):
            await gateway.fetch_payment(PAYMENT_ID)
        assert await gateway.ping()


async def test_a_404_that_is_not_the_apis_is_a_wrong_url_not_an_unknown_payment(
    settings_for,
) -> None:
    """YOOKASSA_API_URL without /v3, or a proxy's page: every lookup is a 404 that YooKassa
    did not send. Taken as "no such payment", each notification would be answered 200 and
    never credited, and the health check would say the API answers."""
    app = web.Application()  # no routes: aiohttp's own text 404 for everything
    async with ServerHandle(app) as server:
        gateway = YooKassaGateway(settings_for(server.url))
        with pytest.raises(GatewayRejected) as raised:
            await gateway.fetch_payment(PAYMENT_ID)
        assert not isinstance(raised.value, ProviderPaymentNotFound)
        assert "YOOKASSA_API_URL" in str(raised.value)
        assert not await gateway.ping()


@pytest.mark.parametrize(
    "answer",
    [
        {"id": "r1", "payment_id": PAYMENT_ID, "status": "succeeded", "amount": "100.00"},
        {
            "id": "r1",
            "payment_id": PAYMENT_ID,
            "status": "succeeded",
            "amount": {"value": "сто", "currency": "RUB"},
        },
        {"id": "r1", "status": "succeeded", "amount": {"value": "1.00", "currency": "RUB"}},
        ["r1"],
    ],
    ids=["amount-a-string", "amount-not-a-number", "no-payment-id", "a-list"],
)
async def test_a_refund_answer_that_is_not_a_refund_is_rejected(answer, settings_for) -> None:
    async def find(request: web.Request) -> web.Response:
        return web.json_response(answer)

    app = web.Application()
    app.router.add_get("/v3/refunds/{id}", find)
    async with ServerHandle(app) as server:
        with pytest.raises(GatewayRejected):
            await YooKassaGateway(settings_for(server.url)).fetch_refund("r1")


@pytest.mark.parametrize(
    "answer",
    [
        {"id": "r1", "payment_id": PAYMENT_ID, "status": "succeeded", "amount": "100.00"},
        {"id": "r1", "status": "succeeded", "amount": {"value": "1.00", "currency": "RUB"}},
        ["r1"],
    ],
    ids=["amount-a-string", "no-payment-id", "a-list"],
)
async def test_an_unreadable_answer_to_a_refund_create_is_unknown_not_a_refusal(
    answer, settings_for
) -> None:
    """The refund may exist: the caller must ask again with the same key (billing.refunds
    keeps its request open), never take it as YooKassa's refusal."""
    keys: list[str] = []

    async def create(request: web.Request) -> web.Response:
        keys.append(request.headers["Idempotence-Key"])
        return web.json_response(answer)

    app = web.Application()
    app.router.add_post("/v3/refunds", create)
    async with ServerHandle(app) as server:
        with pytest.raises(GatewayUnavailable):
            await YooKassaGateway(settings_for(server.url)).create_refund(
                payment_id=PAYMENT_ID, amount=100, currency="RUB", idempotence_key="k-1"
            )
    assert keys == ["k-1"]


async def test_a_refusal_of_a_refund_create_is_a_refusal(settings_for) -> None:
    async def create(request: web.Request) -> web.Response:
        body = {"type": "error", "code": "invalid_request", "description": "too much"}
        return web.json_response(body, status=400)

    app = web.Application()
    app.router.add_post("/v3/refunds", create)
    async with ServerHandle(app) as server:
        with pytest.raises(GatewayRejected, match="too much") as raised:
            await YooKassaGateway(settings_for(server.url)).create_refund(
                payment_id=PAYMENT_ID, amount=100, currency="RUB", idempotence_key="k-2"
            )
    assert not isinstance(raised.value, GatewayUnavailable)
