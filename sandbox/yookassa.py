"""YooKassa API v3 emulator.

A local aiohttp server that answers the YooKassa API the way the official ``yookassa`` SDK
(pointed at it with ``Configuration.configure(shop_id, secret_key, api_url=f"{url}/v3")``)
expects, plus a checkout page and a control API under ``/_emu/`` to play the payer, send
notifications to the shop's webhook and inject faults.

Run it:  ``python -m sandbox.yookassa --port 8082 --shop-id 100500 --secret-key test_x
--webhook-url http://127.0.0.1:8080/yookassa/webhook``
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import hashlib
import html
import json
import logging
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from sandbox._common import drop_connection, dumps, json_response

log = logging.getLogger("sandbox.yookassa")

CURRENCIES = {
    "RUB",
    "USD",
    "EUR",
    "BYN",
    "CNY",
    "KZT",
    "UAH",
    "UZS",
    "TRY",
    "INR",
    "AMD",
    "GBP",
    "GEL",
    "KGS",
}
FINAL = {"succeeded", "canceled"}
CANCEL_REASONS = {
    "3d_secure_failed",
    "call_issuer",
    "canceled_by_merchant",
    "card_expired",
    "country_forbidden",
    "deal_expired",
    "expired_on_capture",
    "expired_on_confirmation",
    "fraud_suspected",
    "general_decline",
    "identification_required",
    "insufficient_funds",
    "internal_timeout",
    "invalid_card_number",
    "invalid_csc",
    "issuer_unavailable",
    "payment_method_limit_exceeded",
    "payment_method_restricted",
    "permission_revoked",
    "unsupported_mobile_operator",
}
CANCEL_PARTIES = {"yoo_money", "payment_network", "merchant"}
STATUS_EVENTS = {
    "waiting_for_capture": "payment.waiting_for_capture",
    "succeeded": "payment.succeeded",
    "canceled": "payment.canceled",
}
COMMISSION = Decimal("0.035")


class YKError(Exception):
    """An API error in YooKassa's shape."""

    def __init__(
        self, status: int, code: str, description: str, parameter: str | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description
        self.parameter = parameter

    def body(self) -> dict[str, Any]:
        body = {
            "type": "error",
            "id": str(uuid.uuid4()),
            "code": self.code,
            "description": self.description,
        }
        if self.parameter:
            body["parameter"] = self.parameter
        return body


def invalid(description: str, parameter: str | None = None) -> YKError:
    return YKError(400, "invalid_request", description, parameter)


class ControlError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _iso(dt: datetime | None = None) -> str:
    dt = dt or datetime.now(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _payment_id() -> str:
    # Real ids look like 2a2c5e1b-000f-5000-8000-1a2b3c4d5e6f
    return f"{secrets.token_hex(4)}-000f-5000-{secrets.choice('89ab')}000-{secrets.token_hex(6)}"


def _refund_id() -> str:
    return f"{secrets.token_hex(4)}-0015-5000-{secrets.choice('89ab')}000-{secrets.token_hex(6)}"


def _money(value: Any, parameter: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise invalid(
            f"Invalid {parameter}: a string with a decimal amount is expected", parameter
        )
    text = str(value).strip()
    if not re.fullmatch(r"\d{1,10}(\.\d{1,2})?", text):
        raise invalid(
            f"Invalid {parameter} format: {text!r}. Use a positive number with at "
            "most 2 digits after the point",
            parameter,
        )
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise invalid(f"Invalid {parameter}", parameter) from None
    if amount <= 0:
        raise invalid(f"Invalid {parameter}: the amount must be greater than 0", parameter)
    return amount


def _amount(obj: Any, parameter: str = "amount") -> dict[str, str]:
    if not isinstance(obj, dict):
        raise invalid(f"Missing required parameter {parameter}", parameter)
    value = _money(obj.get("value"), f"{parameter}.value")
    currency = obj.get("currency")
    if currency not in CURRENCIES:
        raise invalid(f"Invalid {parameter}.currency: {currency!r}", f"{parameter}.currency")
    return {"value": f"{value:.2f}", "currency": currency}


def _validate_receipt(receipt: Any, amount: dict[str, str]) -> dict[str, Any]:
    if not isinstance(receipt, dict):
        raise invalid("Invalid receipt", "receipt")
    customer = receipt.get("customer") or {}
    email = customer.get("email") or receipt.get("email")
    phone = customer.get("phone") or receipt.get("phone")
    if not email and not phone:
        raise invalid(
            "Receipt customer contact is missing: specify receipt.customer.email or "
            "receipt.customer.phone",
            "receipt.customer",
        )
    if email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", str(email)):
        raise invalid("Invalid receipt.customer.email", "receipt.customer.email")
    if phone and not re.fullmatch(r"\+?\d{11,15}", str(phone)):
        raise invalid(
            "Invalid receipt.customer.phone: use the ITU-T E.164 format, e.g. 79000000000",
            "receipt.customer.phone",
        )
    items = receipt.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= 100:
        raise invalid("Receipt must contain 1 to 100 items", "receipt.items")
    total = Decimal(0)
    for i, item in enumerate(items):
        prefix = f"receipt.items[{i}]"
        if not isinstance(item, dict):
            raise invalid(f"Invalid {prefix}", prefix)
        description = item.get("description")
        if not isinstance(description, str) or not 1 <= len(description) <= 128:
            raise invalid(
                f"Invalid {prefix}.description: 1 to 128 characters expected",
                f"{prefix}.description",
            )
        try:
            quantity = Decimal(str(item.get("quantity")))
        except InvalidOperation:
            raise invalid(f"Invalid {prefix}.quantity", f"{prefix}.quantity") from None
        if quantity <= 0:
            raise invalid(f"Invalid {prefix}.quantity", f"{prefix}.quantity")
        item_amount = _amount(item.get("amount"), f"{prefix}.amount")
        if item_amount["currency"] != amount["currency"]:
            raise invalid(
                f"{prefix}.amount.currency differs from the payment currency",
                f"{prefix}.amount.currency",
            )
        vat = item.get("vat_code")
        if (
            isinstance(vat, bool)
            or not isinstance(vat, (int, str))
            or not str(vat).isdigit()
            or not 1 <= int(vat) <= 12
        ):
            raise invalid(f"Invalid {prefix}.vat_code", f"{prefix}.vat_code")
        total += Decimal(item_amount["value"]) * quantity
    if total.quantize(Decimal("0.01")) != Decimal(amount["value"]):
        raise invalid(
            f"The sum of the receipt items ({total:.2f}) doesn't match the payment "
            f"amount ({amount['value']})",
            "receipt.items",
        )
    return receipt


def _validate_metadata(metadata: Any) -> dict[str, str]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise invalid("Invalid metadata: an object is expected", "metadata")
    if len(metadata) > 16:
        raise invalid("Invalid metadata: at most 16 keys are allowed", "metadata")
    result = {}
    for key, value in metadata.items():
        if not 1 <= len(key) <= 32:
            raise invalid("Invalid metadata: a key is longer than 32 characters", "metadata")
        if isinstance(value, (dict, list)):
            raise invalid(f"Invalid metadata.{key}: a string is expected", f"metadata.{key}")
        text = (
            ""
            if value is None
            else (str(value).lower() if isinstance(value, bool) else str(value))
        )
        if len(text) > 512:
            raise invalid(f"Invalid metadata.{key}: at most 512 characters", f"metadata.{key}")
        result[key] = text
    return result


@dataclass
class PaymentRecord:
    payment: dict[str, Any]
    capture: bool
    request: dict[str, Any]
    idempotence_key: str
    receipt: dict[str, Any] | None = None
    refunds: list[str] = field(default_factory=list)


@dataclass
class Fault:
    kind: str  # error | delay | drop | drop_after
    remaining: int
    only: str | None = None  # create | get | capture | cancel | refund | list
    status: int = 500
    delay: float = 0.0

    def matches(self, operation: str) -> bool:
        return self.remaining > 0 and (self.only in (None, "any") or self.only == operation)


# The API's error codes for the statuses a fault may answer with (5xx: internal_server_error).
FAULT_ERRORS = {
    400: ("invalid_request", "Bad request"),
    401: ("invalid_credentials", "Authentication error"),
    403: ("forbidden", "Access denied"),
    404: ("not_found", "Object not found"),
    429: ("too_many_requests", "Too many requests"),
}


class YooKassaEmulator:
    def __init__(
        self,
        shop_id: str,
        secret_key: str,
        public_url: str | None = None,
        webhook_url: str | None = None,
        *,
        auto_notify: bool = True,
        notify_max_attempts: int = 5,
        notify_backoff: float = 0.2,
        notify_max_delay: float | None = None,
    ) -> None:
        self.shop_id = str(shop_id)
        self.secret_key = secret_key
        self.public_url = public_url.rstrip("/") if public_url else None
        self.webhook_url = webhook_url
        self.auto_notify = auto_notify
        # What a new refund becomes (YooKassa: most are succeeded at once; some stay
        # pending for a while, a few end canceled): "succeeded", "pending" or "canceled".
        self.refund_status = "succeeded"
        self.notify_max_attempts = notify_max_attempts
        self.notify_backoff = notify_backoff
        self.notify_max_delay = notify_max_delay  # None: the waits double without end
        self.gateway_id = str(
            100_000 + int(hashlib.sha1(self.shop_id.encode()).hexdigest()[:4], 16)
        )
        self.payments: dict[str, PaymentRecord] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.idempotence: dict[str, tuple[str, int, dict[str, Any]]] = {}
        self.requests: list[dict[str, Any]] = []
        self.notifications: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self._http: ClientSession | None = None
        self._tasks: set[asyncio.Task] = set()
        self._closed = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        """asyncio.sleep that ends early when the server shuts down."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), seconds)

    def reset(self) -> None:
        self.refund_status = "succeeded"
        for task in list(self._tasks):
            task.cancel()
        self.payments.clear()
        self.refunds.clear()
        self.idempotence.clear()
        self.requests.clear()
        self.notifications.clear()
        self.faults.clear()

    async def shutdown(self) -> None:
        self._closed.set()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._http is not None:
            await self._http.close()

    def spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def http(self) -> ClientSession:
        if self._http is None or self._http.closed:
            self._http = ClientSession(timeout=ClientTimeout(total=30))
        return self._http

    def take_fault(self, operation: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(operation):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def record(self, payment_id: str) -> PaymentRecord:
        rec = self.payments.get(payment_id)
        if rec is None:
            raise YKError(404, "not_found", f"Payment not found: {payment_id}")
        return rec

    # ---------------------------------------------------------------- payments
    def create_payment(self, body: dict[str, Any], key: str, base_url: str) -> dict[str, Any]:
        amount = _amount(body.get("amount"))
        description = body.get("description")
        if description is not None and (
            not isinstance(description, str) or len(description) > 128
        ):
            raise invalid("Invalid description: at most 128 characters", "description")
        metadata = _validate_metadata(body.get("metadata"))
        capture = body.get("capture", False)
        if not isinstance(capture, bool):
            raise invalid("Invalid capture: a boolean is expected", "capture")
        confirmation_in = body.get("confirmation")
        payment_id = _payment_id()
        confirmation: dict[str, Any] | None = None
        if confirmation_in is not None:
            if not isinstance(confirmation_in, dict):
                raise invalid("Invalid confirmation", "confirmation")
            ctype = confirmation_in.get("type")
            if ctype == "redirect":
                return_url = confirmation_in.get("return_url")
                if not isinstance(return_url, str) or not re.match(
                    r"^[a-z][a-z0-9+.-]*://", return_url
                ):
                    raise invalid(
                        "Missing or invalid confirmation.return_url", "confirmation.return_url"
                    )
                confirmation = {
                    "type": "redirect",
                    "confirmation_url": f"{base_url}/checkout/{payment_id}",
                    "return_url": return_url,
                }
                if confirmation_in.get("enforce") is not None:
                    confirmation["enforce"] = bool(confirmation_in["enforce"])
            elif ctype == "embedded":
                confirmation = {
                    "type": "embedded",
                    "confirmation_token": "ct-" + secrets.token_hex(16),
                }
            elif ctype == "external":
                confirmation = {"type": "external"}
            elif ctype == "qr":
                confirmation = {
                    "type": "qr",
                    "confirmation_data": f"{base_url}/checkout/{payment_id}",
                }
            elif ctype == "mobile_application":
                confirmation = {
                    "type": "mobile_application",
                    "confirmation_url": f"{base_url}/checkout/{payment_id}",
                }
            else:
                raise invalid(f"Invalid confirmation.type: {ctype!r}", "confirmation.type")
        receipt = None
        if body.get("receipt") is not None:
            receipt = _validate_receipt(body["receipt"], amount)
        method_data = body.get("payment_method_data")
        if method_data is not None and (
            not isinstance(method_data, dict) or not isinstance(method_data.get("type"), str)
        ):
            raise invalid("Invalid payment_method_data", "payment_method_data.type")
        payment: dict[str, Any] = {
            "id": payment_id,
            "status": "pending",
            "amount": amount,
        }
        if description:
            payment["description"] = description
        payment["recipient"] = {"account_id": self.shop_id, "gateway_id": self.gateway_id}
        if method_data is not None:
            payment["payment_method"] = {
                "type": method_data["type"],
                "id": payment_id,
                "saved": False,
            }
        payment["created_at"] = _iso()
        if confirmation is not None:
            payment["confirmation"] = confirmation
        payment["test"] = True
        payment["paid"] = False
        payment["refundable"] = False
        if receipt is not None:
            payment["receipt_registration"] = "pending"
        payment["metadata"] = metadata
        self.payments[payment_id] = PaymentRecord(payment, capture, body, key, receipt)
        return payment

    @staticmethod
    def _bank_card(payment_id: str) -> dict[str, Any]:
        return {
            "type": "bank_card",
            "id": payment_id,
            "saved": False,
            "status": "inactive",
            "title": "Bank card *4477",
            "card": {
                "first6": "555555",
                "last4": "4477",
                "expiry_year": "2030",
                "expiry_month": "12",
                "card_type": "MasterCard",
                "issuer_country": "RU",
                "issuer_name": "Sandbox Bank",
            },
        }

    def mark_waiting(self, rec: PaymentRecord, *, force: bool = False) -> dict[str, Any]:
        p = rec.payment
        if p["status"] != "pending" and not force:
            raise ControlError(f"payment {p['id']} is {p['status']}, not pending", 409)
        p["status"] = "waiting_for_capture"
        p["paid"] = True
        p.setdefault("payment_method", self._bank_card(p["id"]))
        p["payment_method"].setdefault("title", "Bank card *4477")
        p["expires_at"] = _iso(datetime.now(UTC) + timedelta(days=7))
        p["authorization_details"] = self._authorization()
        return p

    @staticmethod
    def _authorization() -> dict[str, Any]:
        return {
            "rrn": str(secrets.randbelow(10**12)).zfill(12),
            "auth_code": str(secrets.randbelow(10**6)).zfill(6),
            "three_d_secure": {
                "applied": False,
                "method_completed": False,
                "challenge_completed": False,
            },
        }

    def mark_succeeded(
        self, rec: PaymentRecord, *, force: bool = False, amount: dict[str, str] | None = None
    ) -> dict[str, Any]:
        p = rec.payment
        if p["status"] in FINAL and not force:
            raise ControlError(f"payment {p['id']} is already {p['status']}", 409)
        p.pop("expires_at", None)
        p.pop("cancellation_details", None)
        if amount is not None:
            p["amount"] = amount
        p["status"] = "succeeded"
        p["paid"] = True
        p.setdefault("payment_method", self._bank_card(p["id"]))
        p["payment_method"].setdefault("title", "Bank card *4477")
        p.setdefault("authorization_details", self._authorization())
        p["captured_at"] = _iso()
        value = Decimal(p["amount"]["value"])
        income = (value - value * COMMISSION).quantize(Decimal("0.01"))
        p["income_amount"] = {"value": f"{income:.2f}", "currency": p["amount"]["currency"]}
        p["refundable"] = True
        p["refunded_amount"] = {"value": "0.00", "currency": p["amount"]["currency"]}
        if rec.receipt is not None:
            p["receipt_registration"] = "succeeded"
        return p

    def mark_canceled(
        self,
        rec: PaymentRecord,
        *,
        party: str = "yoo_money",
        reason: str = "expired_on_confirmation",
        force: bool = False,
    ) -> dict[str, Any]:
        p = rec.payment
        if p["status"] in FINAL and not force:
            raise ControlError(f"payment {p['id']} is already {p['status']}", 409)
        if party not in CANCEL_PARTIES:
            raise ControlError(f"party must be one of {sorted(CANCEL_PARTIES)}")
        if reason not in CANCEL_REASONS:
            raise ControlError(f"reason must be one of {sorted(CANCEL_REASONS)}")
        for key in ("expires_at", "captured_at", "income_amount", "refunded_amount"):
            p.pop(key, None)
        p["status"] = "canceled"
        p["paid"] = False
        p["refundable"] = False
        p["cancellation_details"] = {"party": party, "reason": reason}
        if rec.receipt is not None:
            p["receipt_registration"] = "canceled"
        return p

    def capture(self, rec: PaymentRecord, body: dict[str, Any]) -> dict[str, Any]:
        p = rec.payment
        if p["status"] != "waiting_for_capture":
            raise invalid(
                f"Incorrect payment status: {p['status']}. The payment can be "
                "captured only in the waiting_for_capture status",
                "payment_id",
            )
        amount = None
        if body.get("amount") is not None:
            amount = _amount(body["amount"])
            if amount["currency"] != p["amount"]["currency"] or Decimal(amount["value"]) > Decimal(
                p["amount"]["value"]
            ):
                raise invalid("The capture amount exceeds the payment amount", "amount.value")
        return self.mark_succeeded(rec, amount=amount)

    def cancel(self, rec: PaymentRecord) -> dict[str, Any]:
        p = rec.payment
        if p["status"] != "waiting_for_capture":
            raise invalid(
                f"Incorrect payment status: {p['status']}. Only a payment in the "
                "waiting_for_capture status can be canceled",
                "payment_id",
            )
        return self.mark_canceled(rec, party="merchant", reason="canceled_by_merchant")

    def create_refund(self, body: dict[str, Any]) -> dict[str, Any]:
        payment_id = body.get("payment_id")
        if not isinstance(payment_id, str) or payment_id not in self.payments:
            raise invalid("Invalid payment_id: payment not found", "payment_id")
        rec = self.payments[payment_id]
        p = rec.payment
        if p["status"] != "succeeded":
            raise invalid(
                f"Payment with the {p['status']} status can't be refunded. Only "
                "succeeded payments can be refunded",
                "payment_id",
            )
        amount = _amount(body.get("amount"))
        if amount["currency"] != p["amount"]["currency"]:
            raise invalid(
                "The refund currency differs from the payment currency", "amount.currency"
            )
        refunded = Decimal(p.get("refunded_amount", {}).get("value", "0"))
        left = Decimal(p["amount"]["value"]) - refunded
        if Decimal(amount["value"]) > left:
            raise invalid(
                f"The refund amount exceeds the amount left to refund ({left:.2f})", "amount.value"
            )
        description = body.get("description")
        if description is not None and (
            not isinstance(description, str) or len(description) > 250
        ):
            raise invalid("Invalid description", "description")
        if body.get("receipt") is not None:
            _validate_receipt(body["receipt"], amount)
        refund = {
            "id": _refund_id(),
            "payment_id": payment_id,
            "status": self.refund_status,
            "created_at": _iso(),
            "amount": amount,
        }
        if description:
            refund["description"] = description
        if body.get("receipt") is not None:
            refund["receipt_registration"] = "succeeded"
        self.refunds[refund["id"]] = refund
        rec.refunds.append(refund["id"])
        if refund["status"] == "canceled":
            refund["cancellation_details"] = {"party": "yoo_money", "reason": "rejected_by_payee"}
        else:  # a pending refund holds its amount: it counts against what is left
            self._add_refunded(rec, Decimal(amount["value"]))
        return refund

    def _add_refunded(self, rec: PaymentRecord, amount: Decimal) -> None:
        p = rec.payment
        total = Decimal(p.get("refunded_amount", {}).get("value", "0")) + amount
        p["refunded_amount"] = {"value": f"{total:.2f}", "currency": p["amount"]["currency"]}
        p["refundable"] = total < Decimal(p["amount"]["value"])

    def finish_refund(self, refund_id: str, status: str) -> dict[str, Any]:
        """A pending refund goes through (succeeded) or is canceled (its amount is free
        to refund again)."""
        refund = self.refunds.get(refund_id)
        if refund is None:
            raise ControlError(f"no refund {refund_id}", 404)
        if refund["status"] != "pending":
            raise ControlError(f"refund {refund_id} is {refund['status']}, not pending", 409)
        refund["status"] = status
        if status == "canceled":
            refund["cancellation_details"] = {"party": "yoo_money", "reason": "rejected_by_payee"}
            rec = self.payments[refund["payment_id"]]
            self._add_refunded(rec, -Decimal(refund["amount"]["value"]))
        return refund

    # ----------------------------------------------------------- notifications
    def notification_body(self, event: str, obj: dict[str, Any]) -> dict[str, Any]:
        return {"type": "notification", "event": event, "object": obj}

    def payment_event(self, rec: PaymentRecord) -> str:
        status = rec.payment["status"]
        if status not in STATUS_EVENTS:
            raise ControlError(f"no notification for a {status} payment; pass event=...", 409)
        return STATUS_EVENTS[status]

    async def notify(
        self,
        body: dict[str, Any],
        *,
        url: str | None = None,
        retry: bool = False,
        max_attempts: int | None = None,
        backoff: float | None = None,
        wait: bool = False,
        source: str = "control",
    ) -> dict[str, Any]:
        target = url or self.webhook_url
        if not target:
            raise ControlError("no webhook URL: pass url or configure webhook_url", 409)
        obj = body.get("object") or {}
        note: dict[str, Any] = {
            "id": len(self.notifications) + 1,
            "event": body.get("event"),
            "object_id": obj.get("id") if isinstance(obj, dict) else None,
            "url": target,
            "body": json.loads(dumps(body)),
            "attempts": [],
            "status": None,
            "delivered": False,
            "done": False,
            "source": source,
            "max_attempts": max_attempts or (self.notify_max_attempts if retry else 1),
            "backoff": self.notify_backoff if backoff is None else backoff,
        }
        self.notifications.append(note)
        await self._attempt(note)
        if not note["delivered"] and note["max_attempts"] > 1:
            task = self.spawn(self._retry(note))
            if wait:
                await task
        else:
            note["done"] = True
        return note

    async def _attempt(self, note: dict[str, Any]) -> None:
        attempt: dict[str, Any] = {"time": _iso(), "status": None}
        note["attempts"].append(attempt)
        try:
            session = await self.http()
            async with session.post(
                note["url"],
                data=dumps(note["body"]).encode(),
                headers={"Content-Type": "application/json"},
                timeout=ClientTimeout(total=10),
            ) as resp:
                attempt["status"] = resp.status
                attempt["response"] = (await resp.text())[:500]
        except (ClientError, TimeoutError, OSError) as exc:
            attempt["error"] = f"{type(exc).__name__}: {exc}"
        note["status"] = attempt["status"]
        note["delivered"] = attempt["status"] == 200

    async def _retry(self, note: dict[str, Any]) -> None:
        try:
            while not note["delivered"] and len(note["attempts"]) < note["max_attempts"]:
                await self.sleep(
                    retry_delay(note["backoff"], len(note["attempts"]), self.notify_max_delay)
                )
                await self._attempt(note)
        finally:
            note["done"] = True

    def auto(self, event: str, obj: dict[str, Any]) -> None:
        if self.auto_notify and self.webhook_url:
            self.spawn(
                self.notify(self.notification_body(event, dict(obj)), retry=True, source="auto")
            )


# ======================================================================== HTTP layer

EMU_KEY: web.AppKey[YooKassaEmulator] = web.AppKey("yookassa_emulator", YooKassaEmulator)


def _base_url(request: web.Request, emu: YooKassaEmulator) -> str:
    return emu.public_url or f"{request.scheme}://{request.host}"


def _check_auth(request: web.Request, emu: YooKassaEmulator) -> bool:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return False
    try:
        decoded = base64.b64decode(header[6:], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, _, password = decoded.partition(":")
    return secrets.compare_digest(user, emu.shop_id) and secrets.compare_digest(
        password, emu.secret_key
    )


def _operation(method: str, path: str) -> str:
    if path.endswith("/capture"):
        return "capture"
    if path.endswith("/cancel"):
        return "cancel"
    if path.startswith("/v3/refunds"):
        return "refund" if method == "POST" else "get_refund"
    if path == "/v3/payments":
        return "create" if method == "POST" else "list"
    return "get"


async def _api(request: web.Request) -> web.StreamResponse:
    """Every /v3 request: log, faults, auth, idempotence, then the operation."""
    emu = request.app[EMU_KEY]
    raw = await request.read()
    try:
        body: Any = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode(errors="replace")
    key = request.headers.get("Idempotence-Key")
    entry: dict[str, Any] = {
        "seq": len(emu.requests) + 1,
        "time": _iso(),
        "method": request.method,
        "path": request.path,
        "query": dict(request.query),
        "headers": {
            "Idempotence-Key": key,
            "Authorization": "Authorization" in request.headers,
            "Content-Type": request.headers.get("Content-Type"),
            "User-Agent": request.headers.get("User-Agent"),
            "YM-User-Agent": request.headers.get("YM-User-Agent"),
        },
        "auth_ok": _check_auth(request, emu),
        "body": body,
    }
    emu.requests.append(entry)
    operation = _operation(request.method, request.path)
    entry["operation"] = operation
    fault = emu.take_fault(operation)
    if fault is not None:
        entry["fault"] = fault.kind
        if fault.kind == "delay":
            await emu.sleep(fault.delay)
        elif fault.kind == "error":
            entry["status"] = fault.status
            code, text = FAULT_ERRORS.get(fault.status, ("invalid_request", "Bad request"))
            if fault.status >= 500:
                code, text = "internal_server_error", "Internal server error"
            err = YKError(fault.status, code, text)
            return json_response(err.body(), status=fault.status)
        elif fault.kind == "drop":
            entry["status"] = None
            drop_connection(request)
            return web.Response(status=500)
    try:
        status, payload = _handle(request, emu, body, key)
    except YKError as exc:
        status, payload = exc.status, exc.body()
    entry["status"] = status
    if fault is not None and fault.kind == "drop_after":
        entry["status"] = None
        drop_connection(request)
        return web.Response(status=500)
    return json_response(payload, status=status)


def _handle(
    request: web.Request, emu: YooKassaEmulator, body: Any, key: str | None
) -> tuple[int, dict[str, Any]]:
    if not _check_auth(request, emu):
        raise YKError(
            401,
            "invalid_credentials",
            "Login fails. Check the authorization data: the shop ID (shopId) and "
            "the secret key. Details: https://yookassa.ru/developers/using-api/"
            "interaction-format#auth",
        )
    path = request.path
    if request.method == "GET":
        if path == "/v3/payments":
            return 200, _list_payments(emu, request)
        match = re.fullmatch(r"/v3/payments/([^/]+)", path)
        if match:
            return 200, emu.record(match.group(1)).payment
        match = re.fullmatch(r"/v3/refunds/([^/]+)", path)
        if match:
            refund = emu.refunds.get(match.group(1))
            if refund is None:
                raise YKError(404, "not_found", f"Refund not found: {match.group(1)}")
            return 200, refund
        if path == "/v3/refunds":
            items = list(emu.refunds.values())
            if request.query.get("payment_id"):
                items = [r for r in items if r["payment_id"] == request.query["payment_id"]]
            return 200, {"type": "list", "items": items[::-1]}
        raise YKError(404, "not_found", "Unknown API method")
    if request.method != "POST":
        raise YKError(405, "invalid_request", "Method not allowed")
    if not key:
        raise invalid(
            "Idempotence-Key header is missing. Every POST request must have a "
            "unique Idempotence-Key",
            "Idempotence-Key",
        )
    if len(key) > 64:
        raise invalid("Idempotence-Key is longer than 64 characters", "Idempotence-Key")
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise invalid("Request body must be a JSON object")
    fingerprint = hashlib.sha256(
        (path + "\n" + json.dumps(body, sort_keys=True)).encode()
    ).hexdigest()
    stored = emu.idempotence.get(key)
    if stored is not None:
        if stored[0] != fingerprint:
            raise invalid(
                "Idempotence key duplicated: the key was used with other request parameters",
                "Idempotence-Key",
            )
        return stored[1], stored[2]
    status, payload = 200, _post(request, emu, body, path)
    emu.idempotence[key] = (fingerprint, status, json.loads(dumps(payload)))
    return status, payload


def _post(
    request: web.Request, emu: YooKassaEmulator, body: dict[str, Any], path: str
) -> dict[str, Any]:
    if path == "/v3/payments":
        return emu.create_payment(
            body, request.headers["Idempotence-Key"], _base_url(request, emu)
        )
    if path == "/v3/refunds":
        refund = emu.create_refund(body)
        if refund["status"] == "succeeded":
            emu.auto("refund.succeeded", refund)
        return refund
    match = re.fullmatch(r"/v3/payments/([^/]+)/(capture|cancel)", path)
    if match:
        rec = emu.record(match.group(1))
        if match.group(2) == "capture":
            payment = emu.capture(rec, body)
        else:
            payment = emu.cancel(rec)
        emu.auto(STATUS_EVENTS[payment["status"]], payment)
        return payment
    raise YKError(404, "not_found", "Unknown API method")


def _list_payments(emu: YooKassaEmulator, request: web.Request) -> dict[str, Any]:
    items = [r.payment for r in emu.payments.values()][::-1]
    status = request.query.get("status")
    if status:
        items = [p for p in items if p["status"] == status]
    limit = int(request.query.get("limit") or 10)
    return {"type": "list", "items": items[: max(1, min(limit, 100))]}


# ------------------------------------------------------------------ control API


async def _values(request: web.Request) -> dict[str, Any]:
    values: dict[str, Any] = dict(request.query)
    if request.body_exists:
        if request.content_type == "application/json":
            body = await request.json()
            if not isinstance(body, dict):
                raise ControlError("JSON object expected")
            values.update(body)
        else:
            values.update(await request.post())
    return values


def _flag(values: dict[str, Any], key: str, default: bool = False) -> bool:
    value = values.get(key, default)
    if isinstance(value, str):
        return value.lower() in {"1", "true", "yes", "on"}
    return bool(value)


def _control_record(request: web.Request) -> tuple[YooKassaEmulator, PaymentRecord]:
    emu = request.app[EMU_KEY]
    rec = emu.payments.get(request.match_info["payment_id"])
    if rec is None:
        raise ControlError(f"payment {request.match_info['payment_id']} not found", 404)
    return emu, rec


async def _notify_options(
    emu: YooKassaEmulator, values: dict[str, Any], body: dict[str, Any]
) -> dict[str, Any]:
    return await emu.notify(
        body,
        url=values.get("url"),
        retry=_flag(values, "retry"),
        max_attempts=int(values["max_attempts"]) if values.get("max_attempts") else None,
        backoff=float(values["backoff"]) if values.get("backoff") is not None else None,
        wait=_flag(values, "wait"),
    )


async def _after_mark(
    emu: YooKassaEmulator, values: dict[str, Any], payment: dict[str, Any]
) -> web.Response:
    result: dict[str, Any] = {"payment": payment}
    if _flag(values, "notify"):
        event = STATUS_EVENTS[payment["status"]]
        result["notification"] = await _notify_options(
            emu, values, emu.notification_body(event, json.loads(dumps(payment)))
        )
    return json_response(result)


async def ctl_succeed(request: web.Request) -> web.StreamResponse:
    emu, rec = _control_record(request)
    values = await _values(request)
    payment = emu.mark_succeeded(rec, force=_flag(values, "force"))
    if values.get("payment_method_type"):
        payment["payment_method"]["type"] = values["payment_method_type"]
    return await _after_mark(emu, values, payment)


async def ctl_waiting(request: web.Request) -> web.StreamResponse:
    emu, rec = _control_record(request)
    values = await _values(request)
    return await _after_mark(emu, values, emu.mark_waiting(rec, force=_flag(values, "force")))


async def ctl_cancel(request: web.Request) -> web.StreamResponse:
    emu, rec = _control_record(request)
    values = await _values(request)
    payment = emu.mark_canceled(
        rec,
        party=values.get("party") or "yoo_money",
        reason=values.get("reason") or "expired_on_confirmation",
        force=_flag(values, "force"),
    )
    return await _after_mark(emu, values, payment)


async def ctl_notify(request: web.Request) -> web.StreamResponse:
    """Send the notification for a payment's current state, or for ``event``."""
    emu, rec = _control_record(request)
    values = await _values(request)
    event = values.get("event") or emu.payment_event(rec)
    if event.startswith("refund."):
        if not rec.refunds:
            raise ControlError("the payment has no refunds", 409)
        obj = dict(emu.refunds[rec.refunds[-1]])
    else:
        obj = json.loads(dumps(rec.payment))
    override = values.get("object_override")
    if isinstance(override, dict):
        obj.update(override)
    note = await _notify_options(emu, values, emu.notification_body(event, obj))
    return json_response(note)


async def ctl_notify_raw(request: web.Request) -> web.StreamResponse:
    """POST an arbitrary body (``{"body": {...}}``) to the webhook, e.g. a forged one."""
    emu = request.app[EMU_KEY]
    values = await _values(request)
    body = values.get("body")
    if not isinstance(body, dict):
        raise ControlError("body (the JSON object to post) is required")
    return json_response(await _notify_options(emu, values, body))


async def ctl_resend(request: web.Request) -> web.StreamResponse:
    emu = request.app[EMU_KEY]
    values = await _values(request)
    nid = int(request.match_info["notification_id"])
    if not 1 <= nid <= len(emu.notifications):
        raise ControlError(f"notification {nid} not found", 404)
    old = emu.notifications[nid - 1]
    note = await _notify_options(emu, {"url": old["url"], **values}, old["body"])
    note["resent_from"] = nid
    return json_response(note)


async def ctl_notifications(request: web.Request) -> web.StreamResponse:
    emu = request.app[EMU_KEY]
    items = emu.notifications
    if request.query.get("object_id"):
        items = [n for n in items if n["object_id"] == request.query["object_id"]]
    return json_response({"notifications": items})


async def ctl_payments(request: web.Request) -> web.StreamResponse:
    emu = request.app[EMU_KEY]
    return json_response({"payments": [r.payment for r in emu.payments.values()]})


async def ctl_payment(request: web.Request) -> web.StreamResponse:
    emu, rec = _control_record(request)
    return json_response(
        {
            "payment": rec.payment,
            "capture": rec.capture,
            "request": rec.request,
            "idempotence_key": rec.idempotence_key,
            "receipt": rec.receipt,
            "refunds": [emu.refunds[r] for r in rec.refunds],
        }
    )


async def ctl_refunds(request: web.Request) -> web.StreamResponse:
    return json_response({"refunds": list(request.app[EMU_KEY].refunds.values())})


async def ctl_refund_finish(request: web.Request) -> web.StreamResponse:
    """POST /_emu/refunds/{refund_id}/{succeed|cancel} [notify=true]: a pending refund ends."""
    emu = request.app[EMU_KEY]
    values = await _values(request)
    status = "succeeded" if request.match_info["action"] == "succeed" else "canceled"
    refund = emu.finish_refund(request.match_info["refund_id"], status)
    result: dict[str, Any] = {"refund": refund}
    if status == "succeeded" and _flag(values, "notify"):
        result["notification"] = await _notify_options(
            emu, values, emu.notification_body("refund.succeeded", dict(refund))
        )
    return json_response(result)


async def ctl_requests(request: web.Request) -> web.StreamResponse:
    emu = request.app[EMU_KEY]
    items = emu.requests
    q = request.query
    if q.get("method"):
        items = [r for r in items if r["method"] == q["method"].upper()]
    if q.get("path"):
        items = [r for r in items if r["path"].startswith(q["path"])]
    if q.get("operation"):
        items = [r for r in items if r["operation"] == q["operation"]]
    return json_response({"requests": items})


async def ctl_faults(request: web.Request) -> web.StreamResponse:
    emu = request.app[EMU_KEY]
    if request.method == "DELETE":
        emu.faults.clear()
    elif request.method == "POST":
        values = await _values(request)
        kind = values.get("kind") or "error"
        if kind not in {"error", "delay", "drop", "drop_after"}:
            raise ControlError("kind must be one of error, delay, drop, drop_after")
        only = values.get("only")
        if only not in {
            None,
            "",
            "any",
            "create",
            "get",
            "list",
            "capture",
            "cancel",
            "refund",
            "get_refund",
        }:
            raise ControlError(
                "only must be one of create, get, list, capture, cancel, refund, get_refund, any"
            )
        emu.faults.append(
            Fault(
                kind=kind,
                remaining=int(values.get("count") or 1),
                only=only or None,
                status=int(values.get("status") or 500),
                delay=float(values.get("delay") or 0),
            )
        )
    return json_response({"faults": [f.__dict__ for f in emu.faults]})


async def ctl_config(request: web.Request) -> web.StreamResponse:
    emu = request.app[EMU_KEY]
    if request.method == "POST":
        values = await _values(request)
        if "webhook_url" in values:
            emu.webhook_url = values["webhook_url"] or None
        if "public_url" in values:
            emu.public_url = (values["public_url"] or "").rstrip("/") or None
        if "auto_notify" in values:
            emu.auto_notify = _flag(values, "auto_notify")
        if "refund_status" in values:
            if values["refund_status"] not in ("succeeded", "pending", "canceled"):
                raise ControlError("refund_status must be succeeded, pending or canceled")
            emu.refund_status = values["refund_status"]
    return json_response(
        {
            "shop_id": emu.shop_id,
            "webhook_url": emu.webhook_url,
            "public_url": emu.public_url,
            "auto_notify": emu.auto_notify,
            "refund_status": emu.refund_status,
        }
    )


async def ctl_reset(request: web.Request) -> web.StreamResponse:
    request.app[EMU_KEY].reset()
    return json_response({"ok": True})


# ----------------------------------------------------------------- checkout page

_PAGE = """<!doctype html>
<html lang="ru"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font-family:-apple-system,Segoe UI,Roboto,Arial,sans-serif;background:#f2f3f5;
margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}}
.card{{background:#fff;border-radius:16px;box-shadow:0 4px 24px rgba(0,0,0,.08);
padding:32px;max-width:420px;width:100%;box-sizing:border-box}}
.shop{{color:#6b7280;font-size:14px}} .amount{{font-size:36px;font-weight:700;margin:8px 0}}
.desc{{color:#111827;margin-bottom:24px}} .test{{background:#fef3c7;color:#92400e;
border-radius:8px;padding:8px 12px;font-size:13px;margin-bottom:20px}}
form{{display:inline}} button{{font-size:16px;border:0;border-radius:10px;padding:12px 20px;
cursor:pointer;margin-right:8px}} .pay{{background:#7b61ff;color:#fff}}
.cancel{{background:#e5e7eb;color:#111827}} .status{{font-size:20px;margin:12px 0}}
a{{color:#7b61ff}}
</style></head><body><main class="card">{body}</main></body></html>"""


def _rubles(amount: dict[str, str]) -> str:
    value = Decimal(amount["value"])
    whole = f"{int(value):,}".replace(",", "\u00a0")
    cents = f"{value:.2f}".split(".")[1]
    sign = {"RUB": "₽", "USD": "$", "EUR": "€"}.get(amount["currency"], amount["currency"])
    return f"{whole},{cents}\u00a0{sign}"


def _page(title: str, body: str, status: int = 200) -> web.Response:
    return web.Response(
        text=_PAGE.format(title=html.escape(title), body=body),
        content_type="text/html",
        status=status,
    )


_STATUS_TEXT = {
    "succeeded": "Оплата прошла",
    "canceled": "Платёж отменён",
    "waiting_for_capture": "Оплата прошла, ждём подтверждения магазина",
}


async def checkout_page(request: web.Request) -> web.StreamResponse:
    emu = request.app[EMU_KEY]
    rec = emu.payments.get(request.match_info["payment_id"])
    if rec is None:
        return _page("Платёж не найден", '<h1 data-testid="status">Платёж не найден</h1>', 404)
    p = rec.payment
    head = (
        f'<div class="shop">Магазин {html.escape(emu.shop_id)} · ЮKassa (песочница)</div>'
        f'<div class="amount" data-testid="amount">{_rubles(p["amount"])}</div>'
        f'<div class="desc" data-testid="description">'
        f"{html.escape(p.get('description') or 'Оплата заказа')}</div>"
    )
    if p["status"] != "pending":
        back = (p.get("confirmation") or {}).get("return_url")
        link = f'<p><a href="{html.escape(back)}">Вернуться в магазин</a></p>' if back else ""
        body = head + (
            f'<div class="status" data-testid="status">'
            f"{_STATUS_TEXT.get(p['status'], p['status'])}</div>{link}"
        )
        return _page("Оплата", body)
    pid = html.escape(p["id"])
    body = head + (
        '<div class="test">Тестовый платёж: деньги не спишутся.</div>'
        f'<form method="post" action="/checkout/{pid}/pay">'
        '<button class="pay" type="submit" data-testid="pay">Оплатить</button></form>'
        f'<form method="post" action="/checkout/{pid}/cancel">'
        '<button class="cancel" type="submit" data-testid="cancel">Отменить</button></form>'
    )
    return _page("Оплата", body)


async def checkout_action(request: web.Request) -> web.StreamResponse:
    emu = request.app[EMU_KEY]
    rec = emu.payments.get(request.match_info["payment_id"])
    if rec is None:
        return _page("Платёж не найден", '<h1 data-testid="status">Платёж не найден</h1>', 404)
    action = request.match_info["action"]
    if rec.payment["status"] == "pending":
        if action == "pay":
            payment = emu.mark_succeeded(rec) if rec.capture else emu.mark_waiting(rec)
        else:
            payment = emu.mark_canceled(rec, party="yoo_money", reason="expired_on_confirmation")
        if emu.webhook_url:
            body = emu.notification_body(
                STATUS_EVENTS[payment["status"]], json.loads(dumps(payment))
            )
            await emu.notify(body, retry=True, source="checkout")
    return_url = (rec.payment.get("confirmation") or {}).get("return_url")
    if return_url:
        raise web.HTTPSeeOther(return_url)
    return _page(
        "Оплата",
        f'<div class="status" data-testid="status">'
        f"{_STATUS_TEXT.get(rec.payment['status'], rec.payment['status'])}"
        f"</div>",
    )


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except ControlError as exc:
        return json_response({"ok": False, "error": str(exc)}, status=exc.status)
    except (json.JSONDecodeError, ValueError) as exc:
        if request.path.startswith("/_emu/"):
            return json_response({"ok": False, "error": f"bad request: {exc}"}, status=400)
        raise


def retry_delay(backoff: float, attempts_made: int, max_delay: float | None) -> float:
    """The wait before the next delivery of a notification: doubling from ``backoff``,
    at most ``max_delay`` seconds apart when that is set."""
    delay = backoff * 2 ** min(attempts_made - 1, 60)
    return delay if max_delay is None else min(delay, max_delay)


def create_app(
    *,
    shop_id: str,
    secret_key: str,
    public_url: str | None = None,
    webhook_url: str | None = None,
    auto_notify: bool = True,
    notify_max_attempts: int = 5,
    notify_backoff: float = 0.2,
    notify_max_delay: float | None = None,
) -> web.Application:
    """The emulator as an aiohttp application (``app[EMU_KEY]`` is its state).

    ``public_url`` is the base of confirmation URLs (default: the Host of each request).
    ``auto_notify``: API-driven changes (capture, cancel, refund) notify the webhook like
    YooKassa does; control-driven marks notify only when asked (``notify=true``).
    """
    app = web.Application(middlewares=[_errors])
    emu = YooKassaEmulator(
        shop_id,
        secret_key,
        public_url,
        webhook_url,
        auto_notify=auto_notify,
        notify_max_attempts=notify_max_attempts,
        notify_backoff=notify_backoff,
        notify_max_delay=notify_max_delay,
    )
    app[EMU_KEY] = emu

    async def on_shutdown(_: web.Application) -> None:
        await emu.shutdown()

    app.on_shutdown.append(on_shutdown)
    app.router.add_route("*", "/v3/{tail:.*}", _api)
    app.router.add_get("/checkout/{payment_id}", checkout_page)
    app.router.add_post("/checkout/{payment_id}/{action:pay|cancel}", checkout_action)
    app.router.add_post("/_emu/payments/{payment_id}/succeed", ctl_succeed)
    app.router.add_post("/_emu/payments/{payment_id}/waiting_for_capture", ctl_waiting)
    app.router.add_post("/_emu/payments/{payment_id}/cancel", ctl_cancel)
    app.router.add_post("/_emu/payments/{payment_id}/notify", ctl_notify)
    app.router.add_get("/_emu/payments", ctl_payments)
    app.router.add_get("/_emu/payments/{payment_id}", ctl_payment)
    app.router.add_get("/_emu/refunds", ctl_refunds)
    app.router.add_post("/_emu/refunds/{refund_id}/{action:succeed|cancel}", ctl_refund_finish)
    app.router.add_post("/_emu/notify", ctl_notify_raw)
    app.router.add_get("/_emu/notifications", ctl_notifications)
    app.router.add_post("/_emu/notifications/{notification_id}/resend", ctl_resend)
    app.router.add_get("/_emu/requests", ctl_requests)
    app.router.add_route("*", "/_emu/faults", ctl_faults)
    app.router.add_route("*", "/_emu/config", ctl_config)
    app.router.add_post("/_emu/reset", ctl_reset)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="YooKassa API v3 emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--shop-id", required=True)
    parser.add_argument("--secret-key", required=True)
    parser.add_argument(
        "--public-url",
        default=None,
        help="base URL of checkout links (default: the request's Host)",
    )
    parser.add_argument("--webhook-url", default=None)
    parser.add_argument("--no-auto-notify", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    app = create_app(
        shop_id=args.shop_id,
        secret_key=args.secret_key,
        public_url=args.public_url,
        webhook_url=args.webhook_url,
        auto_notify=not args.no_auto_notify,
    )
    web.run_app(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
