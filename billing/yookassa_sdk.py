"""The yookassa SDK half of the gateway (:mod:`billing.yookassa`): the SDK's client with a
socket timeout, actionable errors and kept-alive connections.

A module of its own so that the SDK (and requests under it, ~9 MB) loads only when a
gateway first calls YooKassa: the bot process imports the gateway at start but talks to
YooKassa only when a user tops up.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import requests
from yookassa import Configuration, Payment, Refund
from yookassa.client import ApiClient
from yookassa.domain.common import HttpVerb
from yookassa.domain.request import PaymentRequest, RefundRequest
from yookassa.domain.response import PaymentResponse

from billing.yookassa import GatewayRejected, GatewayUnavailable, ProviderPaymentNotFound


def configure(shop_id: str, secret: str, api_url: str, timeout: float) -> None:
    # The SDK keeps its configuration in class attributes: one shop per process.
    Configuration.configure(shop_id, secret, api_url=api_url)
    _TimeoutApiClient.request_timeout = timeout


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


def create_payment(body: dict[str, Any], idempotence_key: str) -> Any:
    try:
        request = PaymentRequest(body)
    except (ValueError, TypeError) as exc:
        raise GatewayRejected(f"invalid payment request: {exc}") from None
    return _Payment.create(request, idempotence_key)


def find_payment(payment_id: str) -> dict[str, Any]:
    return _Payment.find_one_raw(payment_id)


def find_refund(refund_id: str) -> Any:
    return _Refund.find_one(refund_id)


def create_refund(body: dict[str, Any], idempotence_key: str) -> Any:
    try:
        request = RefundRequest(body)
    except (ValueError, TypeError) as exc:
        raise GatewayRejected(f"invalid refund request: {exc}") from None
    return _Refund.create(request, idempotence_key)
