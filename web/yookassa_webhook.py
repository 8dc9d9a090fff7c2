"""POST /yookassa/webhook: YooKassa's notifications, trusted for nothing but a hint.

The order of checks: the sender address (403), the content type (415), the body size (413),
JSON and the notification shape via the SDK's ``WebhookNotificationFactory`` (400). Then the
notification only says *which* payment or refund to look at: everything that moves money is
read back from the YooKassa API (``billing.payments.reconcile_payment`` and
``reconcile_refund``) and compared with our own rows before the once-only write commits.

The answer: 200 after the commit, or for a notification that will never need work (unknown
payment, already credited, an event we do not handle); 503 when something transient failed
(the database, the YooKassa API) so YooKassa delivers it again; 4xx for a bad request. No
answer ever carries a stack trace; every refusal is logged with its reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy import exc as sa_exc
from yookassa.domain.notification import WebhookNotificationFactory

from billing import notices, payments
from billing.errors import BillingError
from billing.payments import Outcome, ReconcileResult, RefundOutcome, reconcile_payment
from billing.yookassa import (
    GatewayRejected,
    GatewayUnavailable,
    ProviderPaymentNotFound,
)
from texts import money_texts
from web.keys import GATEWAY, METRICS, NOTIFIER, SENDERS, SESSIONMAKER, SETTINGS
from web.notify import tell_canceled, tell_credited
from web.security import UntrustedSender

log = logging.getLogger(__name__)

PAYMENT_SUCCEEDED = "payment.succeeded"
PAYMENT_CANCELED = "payment.canceled"
PAYMENT_WAITING = "payment.waiting_for_capture"
REFUND_SUCCEEDED = "refund.succeeded"
PAYMENT_EVENTS = (PAYMENT_SUCCEEDED, PAYMENT_CANCELED, PAYMENT_WAITING)
MAX_ID_LENGTH = 64
# The database and the API are each bounded (pool, socket timeouts); this bounds the sum, so
# a hung dependency turns into a 503 and a redelivery instead of a request that never ends.
EXTRA_SECONDS = 30.0

# Errors after which the same notification will succeed later: answer 503.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DBAPIError,
    sa_exc.TimeoutError,  # the pool had no connection to give
    sa_exc.DisconnectionError,
    ConnectionError,
    OSError,
    TimeoutError,
)


class Rejected(Exception):
    """A request refused before any work: status, a short reason for the log and metrics."""

    def __init__(self, status: int, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Handled:
    status: int
    outcome: str
    detail: str = ""


def _answer(status: int, outcome: str) -> web.Response:
    return web.json_response({"status": outcome}, status=status)


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_type != "application/json":
        raise Rejected(415, "content_type", request.content_type[:64])
    declared = request.content_length
    if declared is not None and declared > limit:
        raise Rejected(413, "body_too_large", f"Content-Length {declared}")
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(min(65536, limit + 1 - size) or 1)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise Rejected(413, "body_too_large", f"more than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(body: bytes) -> tuple[str, dict[str, Any]]:
    """(event, object as a plain dict) of a notification, or ``Rejected(400)``."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # nested past Python's limit
        raise Rejected(400, "malformed_json") from None
    if not isinstance(data, dict):
        raise Rejected(400, "not_an_object")
    if not isinstance(data.get("event"), str) or not isinstance(data.get("type"), str):
        raise Rejected(400, "no_type_or_event")
    raw_object = data.get("object")
    if not isinstance(raw_object, dict) or not raw_object:
        raise Rejected(400, "missing_object")
    try:
        notification = WebhookNotificationFactory().create(data)
    except Exception as exc:  # noqa: BLE001 - the SDK raises whatever its setters raise
        # Only the error's type: the SDK's messages may quote values from the body.
        raise Rejected(400, "not_a_notification", type(exc).__name__) from None
    if notification.object is None:
        raise Rejected(400, "missing_object")
    return str(notification.event), raw_object


_ID = re.compile(r"[A-Za-z0-9_-]+")


def _object_id(obj: dict[str, Any], key: str = "id") -> str:
    value = obj.get(key)
    # Letters, digits, "-" and "_" (YooKassa's ids are UUIDs): the id goes into the API's URL.
    if not isinstance(value, str) or not _ID.fullmatch(value) or len(value) > MAX_ID_LENGTH:
        raise Rejected(400, f"bad_object_{key}")
    return value


def _row_hint(obj: dict[str, Any]) -> int | None:
    """Our payment row id from the body's metadata: only a lookup hint, checked by the API."""
    metadata = obj.get("metadata")
    value = metadata.get("payment_row_id") if isinstance(metadata, dict) else None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19:
        return int(value)
    return None


async def _reconcile(request: web.Request, yookassa_id: str, hint: int | None) -> ReconcileResult:
    sessionmaker, gateway = request.app[SESSIONMAKER], request.app[GATEWAY]
    result = await reconcile_payment(sessionmaker, gateway, yookassa_payment_id=yookassa_id)
    if result.outcome is Outcome.UNKNOWN_PAYMENT and hint is not None:
        # Our create call may have timed out after YooKassa made the payment, so the row has
        # no YooKassa id yet. reconcile_payment fetches this id from the API and requires its
        # metadata to point at this very row and user before it writes anything.
        result = await reconcile_payment(
            sessionmaker, gateway, payment_id=hint, yookassa_payment_id=yookassa_id
        )
    return result


async def _payment_event(request: web.Request, event: str, obj: dict[str, Any]) -> Handled:
    yookassa_id = _object_id(obj)
    result = await _reconcile(request, yookassa_id, _row_hint(obj))
    notifier = request.app[NOTIFIER]
    outcome = result.outcome
    if outcome is Outcome.CREDITED and result.telegram_id is not None:
        log.info(
            "payment %s (%s): credited %d to user %s",
            result.payment_id,
            yookassa_id,
            result.amount,
            result.user_id,
        )
        tell_credited(request.app[NOTIFIER], result)
    elif outcome is Outcome.CANCELED and result.detail == "canceled now":
        log.info(
            "payment %s (%s): canceled by %s, reason %s",
            result.payment_id,
            yookassa_id,
            result.cancellation_party,
            result.cancellation_reason,
        )
        if result.telegram_id is not None:
            tell_canceled(notifier, result)
    elif outcome is Outcome.UNKNOWN_PAYMENT:
        log.warning("%s for unknown payment %s: ignored", event, yookassa_id)
    elif outcome is Outcome.MISMATCH:
        log.error(
            "%s for payment %s (%s) not credited: %s",
            event,
            result.payment_id,
            yookassa_id,
            result.detail,
        )
    elif outcome is Outcome.PENDING:
        # YooKassa tells of a change its API does not show yet: nothing is done now, and the
        # 503 has it deliver again later (a body that lies gains nothing either way).
        log.warning(
            "%s for payment %s (%s) but the API says otherwise (%s): nothing done, "
            "asking for a retry",
            event,
            result.payment_id,
            yookassa_id,
            result.detail,
        )
        return Handled(503, "api_not_there_yet", result.detail)
    return Handled(200, outcome.value, result.detail)


async def _refund_event(request: web.Request, obj: dict[str, Any]) -> Handled:
    result = await payments.reconcile_refund(
        request.app[SESSIONMAKER], request.app[GATEWAY], refund_id=_object_id(obj)
    )
    if result.credit is not None and result.credit.telegram_id is not None:
        # This request made the credit: its message goes first, then the refund's.
        tell_credited(request.app[NOTIFIER], result.credit)
    if result.outcome is RefundOutcome.NOT_PAID_YET:
        # As for a payment event: the API has not caught up yet; YooKassa comes back.
        return Handled(503, result.outcome.value, result.detail)
    if result.outcome is RefundOutcome.RECORDED and result.telegram_id is not None:
        request.app[NOTIFIER].send(
            result.telegram_id,
            money_texts.refunded_text(
                amount=result.amount, balance=result.balance_after or 0, language=result.language
            ),
            what="refund",
            notice=notices.refunded_key(result.refund_id),
        )
    return Handled(200, result.outcome.value, result.detail)


async def _handle(request: web.Request, event: str, obj: dict[str, Any]) -> Handled:
    if event in PAYMENT_EVENTS:
        return await _payment_event(request, event, obj)
    if event == REFUND_SUCCEEDED:
        return await _refund_event(request, obj)
    log.warning("notification event %r is not handled: ignored", event[:64])
    return Handled(200, "ignored_event")


async def yookassa_webhook(request: web.Request) -> web.Response:
    app = request.app
    settings, metrics = app[SETTINGS], app[METRICS]
    started = time.perf_counter()
    event: str | None = None
    try:
        sender = app[SENDERS].check(request)
        body = await _read_body(request, settings.WEB_MAX_BODY_BYTES)
        event, obj = _parse(body)
        async with asyncio.timeout(settings.YOOKASSA_TIMEOUT * 2 + EXTRA_SECONDS):
            handled = await _handle(request, event, obj)
    except UntrustedSender as exc:
        metrics.rejections.labels("untrusted_sender").inc()
        log.warning(
            "webhook refused (403): %s; address %s, peer %s",
            exc.reason,
            exc.address,
            request.remote,
        )
        return _answer(403, "forbidden")
    except Rejected as exc:
        metrics.rejections.labels(exc.reason).inc()
        log.warning(
            "webhook refused (%d): %s %s; event %r, peer %s",
            exc.status,
            exc.reason,
            exc.detail,
            (event or "")[:64],
            request.remote,
        )
        response = _answer(exc.status, exc.reason)
        if exc.status == 413:
            response.force_close()  # do not drain megabytes we will never read
        return response
    except ProviderPaymentNotFound as exc:
        # YooKassa itself does not know the object: a forged or foreign notification.
        metrics.notification(event, "unknown_to_yookassa")
        log.warning("%s: YooKassa does not know this object (%s): ignored", event, exc)
        return _answer(200, "unknown_payment")
    except GatewayUnavailable as exc:
        metrics.notification(event, "gateway_unavailable")
        log.warning("%s: YooKassa API unavailable, asking for a retry: %s", event, exc)
        return _answer(503, "retry_later")
    except GatewayRejected as exc:
        # Our credentials or request are wrong: fixable on our side, so let YooKassa retry.
        metrics.notification(event, "gateway_rejected")
        log.error("%s: YooKassa API refused our request, asking for a retry: %s", event, exc)
        return _answer(503, "retry_later")
    except TRANSIENT_DB_ERRORS as exc:
        metrics.notification(event, "transient_error")
        log.warning("%s: transient failure, asking for a retry: %s", event, type(exc).__name__)
        return _answer(503, "retry_later")
    except BillingError as exc:
        metrics.notification(event, "billing_error")
        log.error("%s: billing refused: %s", event, exc)
        return _answer(503, "retry_later")
    metrics.notification(event, handled.outcome)
    log.debug(
        "%s from %s handled in %.3fs: %s",
        event,
        sender,
        time.perf_counter() - started,
        handled.outcome,
    )
    return _answer(handled.status, handled.outcome)
