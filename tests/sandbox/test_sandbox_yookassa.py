"""The YooKassa emulator against the real (synchronous) yookassa SDK, run in threads."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from yookassa import Configuration, Payment, Refund
from yookassa.domain.exceptions import (
    BadRequestError,
    InternalServerError,
    NotFoundError,
    UnauthorizedError,
)
from yookassa.domain.notification import WebhookNotification, WebhookNotificationFactory

RETURN_URL = "https://t.me/media_lab_bot"


def params(value: str = "300.00", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "amount": {"value": value, "currency": "RUB"},
        "confirmation": {"type": "redirect", "return_url": RETURN_URL},
        "capture": True,
        "description": "Пополнение баланса Media Lab",
        "metadata": {"user_id": "42", "payment_row_id": "7"},
    }
    body.update(extra)
    return body


@pytest.fixture
def sdk(yk_server, shop) -> Iterator[None]:
    shop_id, secret_key = shop
    Configuration.configure(shop_id, secret_key, api_url=f"{yk_server.url}/v3")
    yield
    Configuration.configure(None, None)


async def call(fn, *args: Any) -> Any:
    """The SDK blocks (requests): run it in a thread like the billing gateway does."""
    return await asyncio.to_thread(fn, *args)


async def test_create_is_idempotent_per_key(sdk, yk, yk_server, shop) -> None:
    key = str(uuid.uuid4())
    first = await call(Payment.create, params(), key)
    again = await call(Payment.create, params(), key)
    assert first.id == again.id
    assert first.status == "pending" and first.paid is False and first.test is True
    assert first.amount.value == 300 and first.amount.currency == "RUB"
    assert first.recipient.account_id == shop[0]
    assert first.confirmation.type == "redirect"
    assert first.confirmation.confirmation_url == f"{yk_server.url}/checkout/{first.id}"
    assert first.metadata["user_id"] == "42"
    assert first.created_at.endswith("Z")
    assert len(await yk.payments()) == 1

    other = await call(Payment.create, params(), str(uuid.uuid4()))
    assert other.id != first.id
    assert len(await yk.payments()) == 2

    with pytest.raises(BadRequestError) as err:
        await call(Payment.create, params("500.00"), key)
    assert err.value.content["code"] == "invalid_request"
    assert err.value.content["parameter"] == "Idempotence-Key"

    creates = await yk.requests("/v3/payments", method="POST")
    assert [r["headers"]["Idempotence-Key"] for r in creates][:2] == [key, key]
    assert all(r["headers"]["Authorization"] and r["auth_ok"] for r in creates)
    assert creates[0]["body"]["amount"] == {"value": "300.00", "currency": "RUB"}
    assert creates[0]["body"]["confirmation"]["return_url"] == RETURN_URL
    assert [r["status"] for r in creates] == [200, 200, 200, 400]


async def test_wrong_credentials_are_rejected(yk_server, yk) -> None:
    Configuration.configure("100500", "wrong-secret", api_url=f"{yk_server.url}/v3")
    try:
        with pytest.raises(UnauthorizedError) as err:
            await call(Payment.create, params(), str(uuid.uuid4()))
    finally:
        Configuration.configure(None, None)
    content = err.value.content
    assert content["type"] == "error" and content["code"] == "invalid_credentials"
    assert content["id"] and content["description"]
    assert await yk.payments() == []
    [req] = await yk.requests()
    assert req["auth_ok"] is False and req["status"] == 401


async def test_missing_idempotence_key_and_raw_shapes(yk_server, shop) -> None:
    auth = base64.b64encode(f"{shop[0]}:{shop[1]}".encode()).decode()
    headers = {"Authorization": f"Basic {auth}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{yk_server.url}/v3/payments", json=params(), headers=headers
        ) as resp:
            assert resp.status == 400
            body = await resp.json()
            assert body["type"] == "error" and body["code"] == "invalid_request"
            assert body["parameter"] == "Idempotence-Key"
        async with http.get(f"{yk_server.url}/v3/payments/nope", headers=headers) as resp:
            assert resp.status == 404
            assert (await resp.json())["code"] == "not_found"
        async with http.get(f"{yk_server.url}/v3/payments/nope") as resp:
            assert resp.status == 401
            assert (await resp.json())["code"] == "invalid_credentials"


@pytest.mark.parametrize(
    ("change", "parameter"),
    [
        ({"amount": {"value": "0.00", "currency": "RUB"}}, "amount.value"),
        ({"amount": {"value": "10.555", "currency": "RUB"}}, "amount.value"),
        ({"amount": {"value": "abc", "currency": "RUB"}}, "amount.value"),
        ({"amount": {"value": "10.00", "currency": "XXX"}}, "amount.currency"),
        ({"description": "д" * 129}, "description"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
        ({"confirmation": {"type": "redirect"}}, "confirmation.return_url"),
        ({"confirmation": {"type": "teleport", "return_url": RETURN_URL}}, "confirmation.type"),
        (
            {
                "receipt": {
                    "items": [
                        {
                            "description": "Пополнение",
                            "quantity": "1.00",
                            "amount": {"value": "300.00", "currency": "RUB"},
                            "vat_code": 1,
                        }
                    ]
                }
            },
            "receipt.customer",
        ),
        (
            {
                "receipt": {
                    "customer": {"email": "a@b.ru"},
                    "items": [
                        {
                            "description": "Пополнение",
                            "quantity": "1.00",
                            "amount": {"value": "200.00", "currency": "RUB"},
                            "vat_code": 1,
                        }
                    ],
                }
            },
            "receipt.items",
        ),
        (
            {
                "receipt": {
                    "customer": {"email": "a@b.ru"},
                    "items": [
                        {
                            "description": "Пополнение",
                            "quantity": "1.00",
                            "amount": {"value": "300.00", "currency": "RUB"},
                            "vat_code": 99,
                        }
                    ],
                }
            },
            "receipt.items[0].vat_code",
        ),
    ],
)
async def test_create_validation(yk_server, yk, shop, change, parameter) -> None:
    # raw HTTP: the SDK validates some of these itself before sending
    auth = base64.b64encode(f"{shop[0]}:{shop[1]}".encode()).decode()
    headers = {"Authorization": f"Basic {auth}", "Idempotence-Key": str(uuid.uuid4())}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{yk_server.url}/v3/payments", json=params(**change), headers=headers
        ) as resp:
            body = await resp.json()
    assert resp.status == 400, body
    assert body["code"] == "invalid_request" and body["parameter"] == parameter
    assert await yk.payments() == []


async def test_valid_receipt_is_accepted(sdk, yk) -> None:
    receipt = {
        "customer": {"email": "user@example.org"},
        "items": [
            {
                "description": "Пополнение баланса",
                "quantity": "1.00",
                "amount": {"value": "300.00", "currency": "RUB"},
                "vat_code": 1,
                "payment_subject": "service",
                "payment_mode": "full_payment",
            }
        ],
    }
    payment = await call(Payment.create, params(receipt=receipt), str(uuid.uuid4()))
    assert payment.receipt_registration == "pending"
    stored = await yk.payment(payment.id)
    assert stored["receipt"]["customer"]["email"] == "user@example.org"


async def test_find_one_and_mark_succeeded(sdk, yk) -> None:
    created = await call(Payment.create, params(), str(uuid.uuid4()))
    assert (await call(Payment.find_one, created.id)).status == "pending"
    with pytest.raises(NotFoundError):
        await call(Payment.find_one, "2a2c5e1b-000f-5000-8000-000000000000")

    marked = await yk.mark_succeeded(created.id)
    assert marked["payment"]["status"] == "succeeded"
    found = await call(Payment.find_one, created.id)
    assert found.status == "succeeded" and found.paid is True
    assert found.captured_at and found.income_amount.value < found.amount.value
    assert found.payment_method.type == "bank_card"
    assert found.refundable is True
    with pytest.raises(Exception, match="already succeeded"):
        await yk.mark_canceled(created.id)


async def test_notification_reaches_the_webhook_in_yookassa_shape(sdk, yk, receiver) -> None:
    await yk.set_webhook_url(receiver.url)
    created = await call(Payment.create, params(), str(uuid.uuid4()))
    with pytest.raises(Exception, match="no notification for a pending payment"):
        await yk.notify(created.id)

    result = await yk.mark_succeeded(created.id, notify=True)
    assert result["notification"]["status"] == 200
    [req] = receiver.requests
    assert req["headers"]["Content-Type"] == "application/json"
    body = json.loads(req["body"])
    assert set(body) == {"type", "event", "object"}
    assert body["type"] == "notification" and body["event"] == "payment.succeeded"
    assert body["object"] == (await yk.payment(created.id))["payment"]

    notification = WebhookNotificationFactory().create(body)
    assert isinstance(notification, WebhookNotification)
    assert notification.event == "payment.succeeded"
    assert notification.object.id == created.id
    assert notification.object.status == "succeeded"
    assert notification.object.amount.value == 300

    # duplicates: re-send the same notification, and the current state again
    dup = await yk.resend(result["notification"]["id"])
    assert dup["status"] == 200 and dup["body"] == body
    again = await yk.notify(created.id)
    assert again["event"] == "payment.succeeded"
    assert len(receiver.requests) == 3
    assert len(await yk.notifications(created.id)) == 3


async def test_canceled_payment_notification(sdk, yk, receiver) -> None:
    await yk.set_webhook_url(receiver.url)
    created = await call(Payment.create, params(), str(uuid.uuid4()))
    result = await yk.mark_canceled(created.id, "card_expired", notify=True)
    details = result["payment"]["cancellation_details"]
    assert details == {"party": "payment_network", "reason": "card_expired"}
    body = json.loads(receiver.requests[0]["body"])
    assert body["event"] == "payment.canceled"
    parsed = WebhookNotificationFactory().create(body)
    assert parsed.object.cancellation_details.reason == "card_expired"
    found = await call(Payment.find_one, created.id)
    assert found.status == "canceled" and found.paid is False


async def test_notification_retries_until_200(sdk, yk, receiver) -> None:
    await yk.set_webhook_url(receiver.url)
    receiver.statuses = [500, 503]
    created = await call(Payment.create, params(), str(uuid.uuid4()))
    await yk.mark_succeeded(created.id)
    note = await yk.notify(created.id, retry=True, wait=True, backoff=0.01)
    assert note["status"] == 200  # wait=True: the record after the last attempt
    [final] = await yk.notifications(created.id)
    assert [a["status"] for a in final["attempts"]] == [500, 503, 200]
    assert final["delivered"] is True and final["done"] is True
    assert len(receiver.requests) == 3

    receiver.statuses = [500] * 10
    note = await yk.notify(created.id, retry=True, max_attempts=3, backoff=0.01)
    assert note["status"] == 500 and note["done"] is False  # without wait: first answer
    await receiver.wait(6)
    [_, bounded] = await yk.notifications(created.id)
    assert len(bounded["attempts"]) == 3 and bounded["delivered"] is False


async def test_notification_without_retry_reports_failure(sdk, yk, receiver) -> None:
    await yk.set_webhook_url(receiver.url)
    receiver.statuses = [500]
    created = await call(Payment.create, params(), str(uuid.uuid4()))
    await yk.mark_succeeded(created.id)
    note = await yk.notify(created.id)
    assert note["status"] == 500 and note["delivered"] is False and note["done"] is True
    unreachable = await yk.notify(created.id, url="http://127.0.0.1:9/closed")
    assert unreachable["status"] is None and "error" in unreachable["attempts"][0]


async def test_checkout_page_pay_marks_notifies_and_redirects(sdk, yk, receiver) -> None:
    await yk.set_webhook_url(receiver.url)
    created = await call(Payment.create, params("1000.00"), str(uuid.uuid4()))
    page = await yk.checkout_html(created.id)
    assert "1\u00a0000,00\u00a0₽" in page
    assert "Пополнение баланса Media Lab" in page
    assert 'data-testid="pay"' in page and "Оплатить" in page and "Отменить" in page

    location = await yk.pay(created.id)
    assert location == RETURN_URL
    assert (await call(Payment.find_one, created.id)).status == "succeeded"
    body = json.loads(receiver.requests[0]["body"])
    assert (body["event"], body["object"]["id"]) == ("payment.succeeded", created.id)
    assert "Оплата прошла" in await yk.checkout_html(created.id)

    # paying twice does nothing more
    assert await yk.pay(created.id) == RETURN_URL
    assert len(receiver.requests) == 1


async def test_checkout_cancel_and_page_without_return_url(sdk, yk, yk_server) -> None:
    created = await call(Payment.create, params(), str(uuid.uuid4()))
    await yk.pay(created.id, cancel=True)
    found = await call(Payment.find_one, created.id)
    assert found.status == "canceled"
    assert found.cancellation_details.reason == "expired_on_confirmation"

    no_return = params(confirmation={"type": "external"})
    plain = await call(Payment.create, no_return, str(uuid.uuid4()))
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{yk_server.url}/checkout/{plain.id}/pay") as resp:
            assert resp.status == 200 and "Оплата прошла" in await resp.text()
        async with http.get(f"{yk_server.url}/checkout/unknown") as resp:
            assert resp.status == 404


async def test_two_stage_capture_cancel_and_refunds(sdk, yk, receiver) -> None:
    await yk.set_webhook_url(receiver.url)
    created = await call(Payment.create, params(capture=False), str(uuid.uuid4()))
    with pytest.raises(BadRequestError):
        await call(Payment.capture, created.id, None, str(uuid.uuid4()))
    await yk.pay(created.id)
    waiting = await call(Payment.find_one, created.id)
    assert waiting.status == "waiting_for_capture" and waiting.paid is True
    captured = await call(
        Payment.capture,
        created.id,
        {"amount": {"value": "250.00", "currency": "RUB"}},
        str(uuid.uuid4()),
    )
    assert captured.status == "succeeded" and captured.amount.value == 250

    with pytest.raises(BadRequestError):
        await call(Payment.cancel, created.id, str(uuid.uuid4()))
    with pytest.raises(BadRequestError):
        await call(
            Refund.create,
            {"payment_id": created.id, "amount": {"value": "300.00", "currency": "RUB"}},
        )
    refund = await call(
        Refund.create, {"payment_id": created.id, "amount": {"value": "100.00", "currency": "RUB"}}
    )
    assert refund.status == "succeeded" and refund.payment_id == created.id
    assert (await call(Refund.find_one, refund.id)).amount.value == 100
    assert (await call(Payment.find_one, created.id)).refunded_amount.value == 100

    # API-driven changes notify like YooKassa: waiting (checkout), succeeded, refund
    await receiver.wait(3)
    events = [json.loads(r["body"])["event"] for r in receiver.requests]
    assert events == ["payment.waiting_for_capture", "payment.succeeded", "refund.succeeded"]

    pending = await call(Payment.create, params(), str(uuid.uuid4()))
    with pytest.raises(BadRequestError):
        await call(
            Refund.create,
            {"payment_id": pending.id, "amount": {"value": "1.00", "currency": "RUB"}},
        )


async def test_merchant_cancel_of_waiting_payment(sdk, yk) -> None:
    created = await call(Payment.create, params(capture=False), str(uuid.uuid4()))
    await yk.mark_waiting_for_capture(created.id)
    canceled = await call(Payment.cancel, created.id, str(uuid.uuid4()))
    assert canceled.status == "canceled"
    assert canceled.cancellation_details.party == "merchant"
    assert canceled.cancellation_details.reason == "canceled_by_merchant"


async def test_fault_500_then_success(sdk, yk) -> None:
    await yk.fail_next(only="create")
    with pytest.raises(InternalServerError):
        await call(Payment.create, params(), str(uuid.uuid4()))
    assert await yk.payments() == []
    created = await call(Payment.create, params(), str(uuid.uuid4()))
    await yk.fail_next(only="get")
    with pytest.raises(InternalServerError):
        await call(Payment.find_one, created.id)
    assert (await call(Payment.find_one, created.id)).id == created.id
    [failed_create, ok_create, failed_get, ok_get] = await yk.requests()
    assert (failed_create["fault"], failed_create["status"]) == ("error", 500)
    assert ok_get["status"] == 200 and "fault" not in ok_get


async def test_lost_response_then_retry_with_same_key(sdk, yk) -> None:
    """The payment is created but the answer is lost; the retry must not create another."""
    await yk.drop_next(only="create", after_processing=True)
    key = str(uuid.uuid4())
    with pytest.raises(Exception):  # noqa: B017 - the SDK fails in its own way on a reset
        await call(Payment.create, params(), key)
    [created] = await yk.payments()
    retried = await call(Payment.create, params(), key)
    assert retried.id == created["id"]
    assert len(await yk.payments()) == 1

    await yk.drop_next(only="create")
    with pytest.raises(Exception):  # noqa: B017
        await call(Payment.create, params(), str(uuid.uuid4()))
    assert len(await yk.payments()) == 1


async def test_delay_trips_a_client_timeout(yk_server, yk, shop) -> None:
    await yk.delay_next(2.0, only="get")
    auth = base64.b64encode(f"{shop[0]}:{shop[1]}".encode()).decode()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.3)) as http:
        with pytest.raises(TimeoutError):
            async with http.get(
                f"{yk_server.url}/v3/payments/x", headers={"Authorization": f"Basic {auth}"}
            ):
                pass
    [req] = await yk.requests()
    assert req["fault"] == "delay"


async def test_forged_notification_body(yk, receiver) -> None:
    forged = {
        "type": "notification",
        "event": "payment.succeeded",
        "object": {
            "id": "fake",
            "status": "succeeded",
            "amount": {"value": "99999.00", "currency": "RUB"},
        },
    }
    note = await yk.notify_raw(forged, url=receiver.url)
    assert note["status"] == 200
    assert json.loads(receiver.requests[0]["body"]) == forged


def test_notification_retries_double_up_to_their_cap() -> None:
    from sandbox.launcher import NOTIFY_ATTEMPTS
    from sandbox.yookassa import retry_delay

    assert [retry_delay(0.5, n, None) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert [retry_delay(0.5, n, 60.0) for n in (7, 8, 30)] == [32.0, 60.0, 60.0]
    assert retry_delay(0.5, 10_000, None) > 0  # no overflow however many attempts
    # The sandbox's schedule: YooKassa retries for a day; ours for about half an hour.
    total = sum(retry_delay(0.5, n, 60.0) for n in range(1, NOTIFY_ATTEMPTS))
    assert 25 * 60 < total < 40 * 60
