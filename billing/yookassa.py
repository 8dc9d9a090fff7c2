"""The YooKassa gateway: the real yookassa SDK, run in a thread, with timeouts it lacks.

yookassa 3.x is synchronous (requests), sets no socket timeout, and turns a network error
into an AttributeError (it reads ``e.response.status_code`` of a timeout). So the SDK's
request objects, URL building, auth and response parsing are used as they are, and only the
HTTP call itself is replaced by one with a timeout and errors we can act on: transient
(timeout, network, 5xx, 429 — try again, with the same idempotence key) or permanent. The
call goes through a requests session kept per SDK thread, so connections are reused.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from yookassa import Configuration, Payment, Refund
from yookassa.client import ApiClient
from yookassa.domain.common import HttpVerb
from yookassa.domain.request import PaymentRequest
from yookassa.domain.response import PaymentResponse

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


# One requests.Session per SDK thread (and API endpoint), kept between calls: the SDK makes
# and closes a new session per call, i.e. a new TCP (in production TLS) connection per API
# call. A session is not documented as thread-safe, so each executor thread has its own.
# bench/internals.py, same run, plain HTTP on localhost: +52 % and +91 % calls/s (TLS in
# production makes each new connection cost far more).
_thread = threading.local()


def _thread_session(client: ApiClient) -> requests.Session:
    sessions: dict[str, requests.Session] = _thread.__dict__.setdefault("sessions", {})
    session = sessions.get(client.endpoint)
    if session is None:
        session = client.get_session()  # the SDK's own, with its retry policy mounted
        # requests reads the environment again on every call (proxy variables, no_proxy, the
        # CA bundle variables, ~/.netrc), a quarter of the call's CPU: read it once here.
        # ~/.netrc is left out on purpose: it would replace our Authorization header.
        session.proxies = requests.utils.get_environ_proxies(client.endpoint)
        session.verify = (
            os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        )
        session.trust_env = False
        sessions[client.endpoint] = session
    return session


def _drop_thread_session(client: ApiClient) -> None:
    session = _thread.__dict__.get("sessions", {}).pop(client.endpoint, None)
    if session is not None:
        session.close()


class _TimeoutApiClient(ApiClient):
    """The SDK's client with a socket timeout, actionable errors and kept-alive connections."""

    request_timeout: float = 15.0

    def request(self, method="", path="", query_params=None, headers=None, body=None):  # type: ignore[no-untyped-def]
        if hasattr(body, "validate"):
            body.validate()
            body = dict(body)
        request_headers = self.prepare_request_headers(headers)
        session = _thread_session(self)
        verify = self.configuration.verify
        if verify is True:
            verify = session.verify  # the CA bundle from the environment, as requests does
        try:
            response = session.request(
                method,
                self.endpoint + path,
                params=query_params,
                headers=request_headers,
                json=body,
                verify=verify,
                timeout=self.request_timeout,
            )
        except requests.RequestException as exc:
            # Start the next call on fresh connections rather than whatever broke here.
            _drop_thread_session(self)
            raise GatewayUnavailable(f"{method} {path}: {type(exc).__name__}") from None
        if response.status_code == 200:
            try:
                return response.json()
            except ValueError:
                raise GatewayUnavailable(f"{method} {path}: answer is not JSON") from None
        code = response.status_code
        description = error_code = ""
        try:
            answer = response.json()
            if isinstance(answer, dict):
                description = str(answer.get("description", ""))[:200]
                error_code = str(answer.get("code", ""))
        except ValueError:
            pass
        message = f"{method} {path}: HTTP {code} {description}".strip()
        if code >= 500 or code in (202, 429):
            raise GatewayUnavailable(message)
        if code == 404 and error_code == "not_found":
            raise ProviderPaymentNotFound(message)
        if code == 404:  # not YooKassa's own answer: a wrong YOOKASSA_API_URL, a proxy
            raise GatewayRejected(f"{message} (not the API's answer: check YOOKASSA_API_URL)")
        raise GatewayRejected(message)


class _Payment(Payment):
    def __init__(self) -> None:
        self.client = _TimeoutApiClient()

    @classmethod
    def find_one_raw(cls, payment_id: str) -> dict[str, Any]:
        """``Payment.find_one``, returning the API's JSON as it came, once the SDK's response
        model took it: turning the model back into a dict (``dict(PaymentResponse)`` walks
        ``dir()`` of every nested class) cost more CPU than the whole HTTP call."""
        instance = cls()
        if not isinstance(payment_id, str) or not payment_id:
            raise ValueError("Invalid payment_id value")
        raw = instance.client.request(HttpVerb.GET, instance.base_path + "/" + payment_id)
        if not isinstance(raw, dict):
            raise GatewayRejected("unexpected answer from YooKassa")
        try:
            PaymentResponse(raw)  # the SDK's checks of the answer, as find_one makes them
        except Exception as exc:  # noqa: BLE001 - the SDK raises whatever its setters raise
            raise GatewayRejected(
                f"malformed payment object from YooKassa: {type(exc).__name__}"
            ) from None
        return raw


class _Refund(Refund):
    def __init__(self) -> None:
        self.client = _TimeoutApiClient()


class YooKassaGateway:
    """Create and fetch payments. Every SDK call runs in a thread with a timeout."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.timeout = settings.YOOKASSA_TIMEOUT
        secret = (
            settings.YOOKASSA_SECRET_KEY.get_secret_value() if settings.YOOKASSA_SECRET_KEY else ""
        )
        # The SDK keeps its configuration in class attributes: one shop per process.
        Configuration.configure(
            settings.YOOKASSA_SHOP_ID or "", secret, api_url=settings.YOOKASSA_API_URL
        )
        _TimeoutApiClient.request_timeout = self.timeout

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
        try:
            request = PaymentRequest(body)
        except (ValueError, TypeError) as exc:
            raise GatewayRejected(f"invalid payment request: {exc}") from None
        response = await self._call(_Payment.create, request, idempotence_key)
        return _provider_payment(_as_dict(response))

    async def fetch_payment(self, yookassa_payment_id: str) -> ProviderPayment:
        if not _is_id(yookassa_payment_id):
            raise ProviderPaymentNotFound(f"bad payment id {yookassa_payment_id!r:.80}")
        return _provider_payment(await self._call(_Payment.find_one_raw, yookassa_payment_id))

    async def fetch_refund(self, refund_id: str) -> ProviderRefund:
        if not _is_id(refund_id):
            raise ProviderPaymentNotFound(f"bad refund id {refund_id!r:.80}")
        try:
            raw = _as_dict(await self._call(_Refund.find_one, refund_id))
        except GatewayError:
            raise
        except Exception as exc:  # noqa: BLE001 - the SDK raises whatever its setters raise
            raise GatewayRejected(
                f"malformed refund object from YooKassa: {type(exc).__name__}"
            ) from None
        try:
            return ProviderRefund(
                id=str(raw["id"]),
                payment_id=str(raw["payment_id"]),
                status=str(raw["status"]),
                amount=parse_amount(raw["amount"]["value"]),
                currency=str(raw["amount"]["currency"]),
                raw=raw,
            )
        except (KeyError, TypeError) as exc:
            raise GatewayRejected(f"malformed refund object from YooKassa: {exc!r}") from None

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
