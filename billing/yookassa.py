"""The YooKassa gateway: the real yookassa SDK, run in a thread, with timeouts it lacks.

yookassa 3.x is synchronous (requests), sets no socket timeout, and turns a network error
into an AttributeError (it reads ``e.response.status_code`` of a timeout). So the SDK's
request objects, URL building, auth and response parsing are used as they are, and only the
HTTP call itself is replaced by one with a timeout and errors we can act on: transient
(timeout, network, 5xx, 429 — try again, with the same idempotence key) or permanent. The
call goes through a requests session kept per SDK thread, so connections are reused.
That half lives in :mod:`billing.yookassa_sdk`, imported on a gateway's first call: the bot
process builds a gateway at start but loads the SDK only when a user first tops up.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from types import ModuleType
from typing import Any

from billing.bounds import INT64_MAX
from billing.settings import Settings

log = logging.getLogger(__name__)

MAX_AMOUNT_RUB = Decimal(INT64_MAX) / 100  # what a kopecks column holds


class GatewayError(Exception):
    transient = False


class GatewayUnavailable(GatewayError):
    """Timeout, network error, 5xx or 429: YooKassa could not be asked; retry later."""

    transient = True


class GatewayRejected(GatewayError):
    """A 4xx: bad credentials, an invalid request. Retrying the same call will not help."""


class ProviderPaymentNotFound(GatewayRejected):
    pass


@dataclass(frozen=True)
class ProviderPayment:
    id: str
    status: str
    amount: int  # kopecks
    currency: str
    metadata: dict[str, str]
    paid: bool
    confirmation_url: str | None
    cancellation_party: str | None
    cancellation_reason: str | None
    raw: dict[str, Any]


@dataclass(frozen=True)
class ProviderRefund:
    id: str
    payment_id: str
    status: str
    amount: int
    currency: str
    raw: dict[str, Any]


def parse_amount(value: object) -> int:
    """YooKassa's "100.00" → 10000 kopecks. Anything else is a GatewayRejected."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise GatewayRejected(f"bad amount from YooKassa: {value!r}") from None
    # Bounded before quantize: "1E+30" made quantize itself raise, "1e17" passed int64.
    if not amount.is_finite() or not 0 <= amount <= MAX_AMOUNT_RUB:
        raise GatewayRejected(f"bad amount from YooKassa: {value!r:.80}")
    if amount != amount.quantize(Decimal("0.01")):
        raise GatewayRejected(f"bad amount from YooKassa: {value!r:.80}")
    return int(amount * 100)


def format_amount(kopecks: int) -> str:
    return f"{kopecks // 100}.{kopecks % 100:02d}"


def _provider_payment(raw: dict[str, Any]) -> ProviderPayment:
    for key in ("id", "status"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise GatewayRejected(f"malformed payment object from YooKassa: no {key}")
    try:
        amount = raw["amount"]
        details = raw.get("cancellation_details") or {}
        confirmation = raw.get("confirmation") or {}
        return ProviderPayment(
            id=str(raw["id"]),
            status=str(raw["status"]),
            amount=parse_amount(amount["value"]),
            currency=str(amount["currency"]),
            metadata={str(k): str(v) for k, v in (raw.get("metadata") or {}).items()},
            paid=bool(raw.get("paid")),
            confirmation_url=confirmation.get("confirmation_url"),
            cancellation_party=details.get("party"),
            cancellation_reason=details.get("reason"),
            raw=raw,
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise GatewayRejected(f"malformed payment object from YooKassa: {exc!r}") from None


# The SDK module once loaded, and the configuration of the gateway built last while it was
# not: the SDK keeps one configuration per process, the last gateway's, as if it had been
# configured when that gateway was built.
_sdk_module: ModuleType | None = None
_pending: tuple[str, str, str, float] | None = None
_sdk_lock = threading.Lock()


def _configure(config: tuple[str, str, str, float]) -> None:
    global _pending
    with _sdk_lock:
        if _sdk_module is None:
            _pending = config
        else:
            _sdk_module.configure(*config)


def _load_sdk() -> ModuleType:
    global _sdk_module, _pending
    with _sdk_lock:
        if _sdk_module is None:
            from billing import yookassa_sdk

            if _pending is not None:
                yookassa_sdk.configure(*_pending)
                _pending = None
            _sdk_module = yookassa_sdk
        return _sdk_module


class YooKassaGateway:
    """Create and fetch payments, create and fetch refunds. Every SDK call runs in a thread
    with a timeout."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.timeout = settings.YOOKASSA_TIMEOUT
        secret = (
            settings.YOOKASSA_SECRET_KEY.get_secret_value() if settings.YOOKASSA_SECRET_KEY else ""
        )
        _configure(
            (settings.YOOKASSA_SHOP_ID or "", secret, settings.YOOKASSA_API_URL, self.timeout)
        )

    async def _sdk(self) -> ModuleType:
        # The first call pays the SDK's import (see bench/bot_memory.py), in a thread so
        # that the event loop goes on serving other users meanwhile.
        return _sdk_module if _sdk_module is not None else await asyncio.to_thread(_load_sdk)

    async def _call(self, func: Any, *args: Any) -> Any:
        try:
            # The socket timeout bounds the thread; wait_for bounds the caller even if DNS or
            # TLS hangs beyond it.
            return await asyncio.wait_for(asyncio.to_thread(func, *args), self.timeout + 5)
        except TimeoutError:
            raise GatewayUnavailable("YooKassa did not answer in time") from None

    def payment_request(
        self,
        *,
        amount: int,
        currency: str,
        description: str,
        metadata: dict[str, str],
        receipt_email: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "amount": {"value": format_amount(amount), "currency": currency},
            "capture": True,
            "confirmation": {"type": "redirect", "return_url": self.settings.YOOKASSA_RETURN_URL},
            "description": description[:128],
            "metadata": metadata,
        }
        if self.settings.YOOKASSA_RECEIPTS_ENABLED and receipt_email:
            body["receipt"] = {
                "customer": {"email": receipt_email},
                "items": [
                    {
                        "description": description[:128],
                        "quantity": "1.00",
                        "amount": {"value": format_amount(amount), "currency": currency},
                        "vat_code": self.settings.YOOKASSA_VAT_CODE,
                        "payment_mode": "full_prepayment",
                        "payment_subject": "service",
                    }
                ],
            }
        return body

    async def create_payment(
        self,
        *,
        amount: int,
        currency: str,
        description: str,
        metadata: dict[str, str],
        idempotence_key: str,
        receipt_email: str | None = None,
    ) -> ProviderPayment:
        body = self.payment_request(
            amount=amount,
            currency=currency,
            description=description,
            metadata=metadata,
            receipt_email=receipt_email,
        )
        sdk = await self._sdk()
        response = await self._call(sdk.create_payment, body, idempotence_key)
        return _provider_payment(_as_dict(response))

    async def fetch_payment(self, yookassa_payment_id: str) -> ProviderPayment:
        if not _is_id(yookassa_payment_id):
            raise ProviderPaymentNotFound(f"bad payment id {yookassa_payment_id!r:.80}")
        sdk = await self._sdk()
        return _provider_payment(await self._call(sdk.find_payment, yookassa_payment_id))

    async def fetch_refund(self, refund_id: str) -> ProviderRefund:
        if not _is_id(refund_id):
            raise ProviderPaymentNotFound(f"bad refund id {refund_id!r:.80}")
        sdk = await self._sdk()
        return await self._refund_call(sdk.find_refund, refund_id)

    async def create_refund(
        self,
        *,
        payment_id: str,
        amount: int,
        currency: str,
        idempotence_key: str,
        description: str | None = None,
        receipt_email: str | None = None,
    ) -> ProviderRefund:
        """POST /refunds with our idempotence key: asked again with the same key (after a
        timeout, a lost answer, a crash) YooKassa answers with the same refund, never a
        second one. The body must then be the same too: build it from stored values only."""
        if not _is_id(payment_id):
            raise ProviderPaymentNotFound(f"bad payment id {payment_id!r:.80}")
        body: dict[str, Any] = {
            "payment_id": payment_id,
            "amount": {"value": format_amount(amount), "currency": currency},
        }
        if description:
            body["description"] = description[:250]
        if self.settings.YOOKASSA_RECEIPTS_ENABLED and receipt_email:
            body["receipt"] = {
                "customer": {"email": receipt_email},
                "items": [
                    {
                        "description": (description or "Возврат")[:128],
                        "quantity": "1.00",
                        "amount": {"value": format_amount(amount), "currency": currency},
                        "vat_code": self.settings.YOOKASSA_VAT_CODE,
                        "payment_mode": "full_prepayment",
                        "payment_subject": "service",
                    }
                ],
            }
        sdk = await self._sdk()
        # An answer we cannot read may still be a refund YooKassa made: "unavailable" (the
        # outcome is unknown; ask again with the same key), never "rejected".
        return await self._refund_call(
            sdk.create_refund, body, idempotence_key, unreadable=GatewayUnavailable
        )

    async def _refund_call(
        self, func: Any, *args: Any, unreadable: type[GatewayError] = GatewayRejected
    ) -> ProviderRefund:
        try:
            response = await self._call(func, *args)
        except GatewayError:
            raise  # the HTTP call's own verdict: unavailable, or a 4xx refusal
        except Exception as exc:  # noqa: BLE001 - the SDK raises whatever its setters raise
            raise unreadable(
                f"malformed refund object from YooKassa: {type(exc).__name__}"
            ) from None
        try:
            raw = _as_dict(response)
            return ProviderRefund(
                id=str(raw["id"]),
                payment_id=str(raw["payment_id"]),
                status=str(raw["status"]),
                amount=parse_amount(raw["amount"]["value"]),
                currency=str(raw["amount"]["currency"]),
                raw=raw,
            )
        except (KeyError, TypeError, GatewayRejected) as exc:
            raise unreadable(f"malformed refund object from YooKassa: {exc!r}") from None

    async def ping(self) -> bool:
        """Whether the API answers our credentials (a lookup of a payment that cannot exist)."""
        try:
            await self.fetch_payment("00000000-0000-0000-0000-000000000000")
        except ProviderPaymentNotFound:
            return True
        except GatewayError:
            return False
        return True


_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _is_id(value: Any) -> bool:
    """An id YooKassa could have made (they are UUIDs): it goes into the request's path."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def _as_dict(response: Any) -> dict[str, Any]:
    """The SDK's response objects iterate as (key, value) pairs, nested ones too."""

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        if hasattr(value, "__iter__") and not isinstance(value, str | bytes):
            try:
                return {k: convert(v) for k, v in dict(value).items()}
            except (TypeError, ValueError):
                return value
        return value

    result = convert(response)
    if not isinstance(result, dict):
        raise GatewayRejected("unexpected answer from YooKassa")
    return result
