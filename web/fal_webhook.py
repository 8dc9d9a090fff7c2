"""POST /fal/webhook: a model's result, from fal's queue, trusted only once its signature is.

The order: the body size (413); fal's ED25519 signature over the request id, user id,
timestamp and the body's SHA-256, checked with the keys of fal's JWKS (fetched and cached,
``imaging.fal_webhook.Jwks``) and a timestamp within ``FAL_WEBHOOK_TOLERANCE_SECONDS`` — an
unsigned, forged or replayed request is a 401 and changes nothing; the body's shape (400).
Then the outcome is recorded once by request id (``billing.model_calls.record_result``: fal
re-delivers a webhook up to ~10 times) and the short delivery job is enqueued
(``jobqueue.queue.enqueue_delivery``). A re-delivery that finds the outcome recorded and the
operation still waiting enqueues the delivery again only if its job is not already queued or
running: the enqueue after the first record may have been lost with Redis.

The answer: 200 once recorded (or when there is nothing left to do: the operation was
delivered or refunded — a late webhook); 404 for a request no operation names yet (the job
may not have committed the id: fal tries again later); 503 when the database or Redis
failed, so fal delivers it again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from redis import Redis
from sqlalchemy import exc as sa_exc

from billing import model_calls
from billing.settings import Settings
from imaging.fal_webhook import REQUEST_ID, WebhookRefused, parse_webhook
from jobqueue.queue import enqueue_delivery, media_queue
from web.keys import FAL_DELIVERIES, FAL_JWKS, SESSIONMAKER, SETTINGS

log = logging.getLogger(__name__)

PATH = "/fal/webhook"
MAX_BODY = 1024 * 1024  # a result is URLs and numbers: far below this
TRANSIENT = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DBAPIError, OSError)


class DeliveryQueue:
    """RQ's enqueue of the delivery job, from the event loop: RQ is synchronous, so in a
    thread, on a Redis client of its own (the web's other client is redis.asyncio)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._redis: Redis | None = None

    def _enqueue(self, operation_id: int, key_token: str, again: bool) -> None:
        if self._redis is None:
            self._redis = Redis.from_url(
                self.settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5
            )
        enqueue_delivery(
            media_queue(self._redis, self.settings),
            self.settings,
            operation_id,
            key_token,
            again=again,
        )

    async def enqueue(self, operation_id: int, key_token: str, *, again: bool) -> None:
        await asyncio.to_thread(self._enqueue, operation_id, key_token, again)

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()


async def fal_webhook(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    if request.content_length is not None and request.content_length > MAX_BODY:
        return _refused(request, 413, "body too large")
    body = await request.content.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return _refused(request, 413, "body too large")
    try:
        request_id = await request.app[FAL_JWKS].verify(
            request.headers, body, tolerance=settings.FAL_WEBHOOK_TOLERANCE_SECONDS
        )
    except WebhookRefused as exc:
        return _refused(request, 401, str(exc))
    except Exception as exc:  # noqa: BLE001 - the JWKS did not load: fal will try again
        log.warning("fal webhook: fal's keys not available: %r", exc)
        return web.json_response({"status": "keys unavailable"}, status=503)
    try:
        outcome = parse_webhook(body, request_id)
    except ValueError as exc:
        return _refused(request, 400, f"request {request_id}: {exc}")
    try:
        async with request.app[SESSIONMAKER]() as session:
            recorded = await model_calls.record_result(
                session, request_id=request_id, result=outcome.as_record()
            )
            await session.commit()
        if recorded is None:
            log.info("fal webhook: request %s is no operation's (yet)", request_id)
            return web.json_response({"status": "unknown request"}, status=404)
        if recorded.waiting:
            await request.app[FAL_DELIVERIES].enqueue(
                recorded.operation_id, recorded.key_token, again=not recorded.first
            )
    except TRANSIENT as exc:
        log.warning("fal webhook: request %s not recorded: %r", request_id, exc)
        return web.json_response({"status": "try again"}, status=503)
    log.info(
        "fal webhook: request %s of operation %s %s (%s)",
        request_id,
        recorded.operation_id,
        "recorded" if recorded.first else "already recorded",
        "ok" if outcome.ok else outcome.reason,
    )
    return web.json_response({"status": "ok"})


def _refused(request: web.Request, status: int, why: str) -> web.Response:
    log.warning(
        "fal webhook refused (%d): %s; request id %r, peer %s",
        status,
        why,
        (request.headers.get(REQUEST_ID) or "")[:64],
        request.remote,
    )
    body: dict[str, Any] = {"status": "refused"}
    return web.json_response(body, status=status)
