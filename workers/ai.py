"""AI operations on fal's queue: the job submits and ends; a short job delivers.

1. The operation's job (``run_operation``) claims the operation, downloads its inputs,
   submits them to the model's queue with a webhook (``web``'s ``POST /fal/webhook``),
   records the request id on the operation (its deadline becomes the model's,
   ``FAL_DEADLINE_SECONDS``), schedules a status poll with RQ's scheduler, and ends: no
   process waits on a model.
2. The webhook (or the poll, when the webhook is lost) records the outcome once
   (``billing.model_calls``) and enqueues the delivery job (``deliver_model_result``): it
   downloads the picture and sends it through the usual delivery path, posting the hold —
   or, for a safety refusal or a rejected input, refunds with a plain reason, no retry.
3. A model that never finishes is refunded by the sweeper at the deadline, once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from redis import Redis
from rq import get_current_job
from sqlalchemy.ext.asyncio import async_sessionmaker

from billing import model_calls
from billing.models import utcnow
from billing.prices import OperationType
from billing.settings import Settings
from imaging import fal
from imaging._image import MediaResult
from imaging.fal_webhook import first_image, outcome_of
from jobqueue.ai import ModelCall, model_call
from jobqueue.queue import enqueue_delivery, media_queue, schedule_poll
from workers import runtime
from workers.claimed import Claimed
from workers.failures import JobFailure

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/fal/webhook"
# What a recorded refusal becomes: the ``worker-reason-*`` the user reads.
REASONS = {"refused": "model-refused", "invalid-input": "model-input"}


def webhook_url(settings: Settings) -> str | None:
    """Where fal posts results: the web server's public base + /fal/webhook (None: no
    webhook, the polls alone bring the results)."""
    if not settings.WEB_PUBLIC_URL:
        return None
    return settings.WEB_PUBLIC_URL.rstrip("/") + WEBHOOK_PATH


# Without a webhook the polls are the only way back: they start soon and come often.
POLL_WITHOUT_WEBHOOK = 3.0


def poll_delays(settings: Settings) -> tuple[float, float]:
    """(the first poll after the submit, then every): a safety net behind a webhook, the
    way back without one."""
    if webhook_url(settings) is None:
        return (
            min(POLL_WITHOUT_WEBHOOK, settings.FAL_POLL_AFTER_SECONDS),
            min(POLL_WITHOUT_WEBHOOK, settings.FAL_POLL_INTERVAL_SECONDS),
        )
    return settings.FAL_POLL_AFTER_SECONDS, settings.FAL_POLL_INTERVAL_SECONDS


def fal_settings(settings: Settings, *, timeout: float = 60.0) -> fal.FalSettings:
    if settings.FAL_KEY is None:
        raise JobFailure("backend", "fal is not configured (FAL_KEY)")
    return fal.FalSettings(
        key=settings.FAL_KEY.get_secret_value(),
        api_url=settings.FAL_API_URL,
        timeout=timeout,
    )


def build_input(
    op_type: str, call: ModelCall, inputs: Sequence[bytes], text: str | None
) -> dict[str, Any]:
    """The model's input for an operation: its photos as data URIs in the field names of
    its kind (fal's conventions), the user's words as ``prompt``, the call's parameters."""
    images = [fal.data_uri(data) for data in inputs]
    payload: dict[str, Any]
    if op_type == OperationType.GENERATE:
        payload = {"prompt": fal.check_prompt(text or "")}
    elif op_type == OperationType.MERGE:
        payload = {"prompt": text or "Combine these photos into one scene", "image_urls": images}
    elif op_type == OperationType.FACE_SWAP:
        payload = {"base_image_url": images[0], "swap_image_url": images[1]}
    elif op_type == OperationType.EDIT:
        payload = {"prompt": text or "", "image_url": images[0]}
    else:  # retouch, upscale: one photo
        payload = {"image_url": images[0]}
    return {**payload, **dict(call.params)}


async def submit(
    settings: Settings,
    op: Claimed,
    call: ModelCall,
    inputs: list[bytes],
    *,
    sessionmaker: async_sessionmaker,
    redis: Redis,
) -> dict[str, Any]:
    """Submit the claimed operation's model call and record it; schedule the poll."""
    async with sessionmaker() as session:
        state = await model_calls.model_state(session, operation_id=op.id)
    if state is not None and state.request_id is not None:
        # A job run again after its submit was recorded (its horse died after it): the
        # model already has it; its webhook or poll delivers.
        log.warning("operation %s: already submitted as %s", op.id, state.request_id)
        return {"operation_id": op.id, "outcome": "already submitted"}
    payload = build_input(op.op_type, call, inputs, op.text)
    async with fal.FalClient(fal_settings(settings), session=runtime.http_session()) as client:
        queued = await client.submit(
            payload, model=call.model_id, webhook_url=webhook_url(settings)
        )
        async with sessionmaker() as session:
            recorded = await model_calls.record_request(
                session,
                operation_id=op.id,
                key_token=op.key_token,
                request_id=queued.request_id,
                deadline_seconds=settings.FAL_DEADLINE_SECONDS,
            )
            await session.commit()
        if not recorded:  # refunded (or submitted) meanwhile: nobody waits for this one
            log.warning("operation %s: no longer waits for a model; cancelled", op.id)
            await client.cancel(queued)
            return {"operation_id": op.id, "outcome": "skipped"}
    await asyncio.to_thread(
        schedule_poll,
        media_queue(redis, settings),
        op.id,
        op.key_token,
        call.model_id,
        queued.request_id,
        after_seconds=poll_delays(settings)[0],
    )
    log.info("operation %s: submitted to %s as %s", op.id, call.model_id, queued.request_id)
    return {"operation_id": op.id, "outcome": "submitted", "request_id": queued.request_id}


async def model_output(
    settings: Settings, sessionmaker: async_sessionmaker, op: Claimed
) -> MediaResult:
    """The recorded outcome of the operation's model call as its result (the delivery
    job), or a JobFailure: a refusal or a rejected input (refunded at once, never retried),
    another failure of the model ("backend")."""
    async with sessionmaker() as session:
        state = await model_calls.model_state(session, operation_id=op.id)
    if state is None or state.result is None:
        raise JobFailure("internal", f"operation {op.id}: no model outcome recorded")
    record = state.result
    if not record.get("ok"):
        reason = REASONS.get(str(record.get("reason")), "backend")
        raise JobFailure(reason, f"the model refused: {record.get('detail', '')}"[:300])
    try:
        url, _ = first_image(record.get("output") or {})
    except ValueError as exc:
        raise JobFailure("backend", str(exc)) from None
    call = model_call(op.op_type, op.model, settings)
    async with fal.FalClient(fal_settings(settings), session=runtime.http_session()) as client:
        data = await client.download(url)
    params: dict[str, str | int | float] = {"request_id": state.request_id or ""}
    if call is not None:
        params["model"] = call.model_id
    # Its own caption (media-result-ai-<type>): what the model did, not the local code's words.
    return fal.model_result(data, op=f"ai-{op.op_type}", params=params)


def _delivery(
    settings: Settings, redis: Redis, operation_id: int, key_token: str, *, again: bool
) -> None:
    enqueue_delivery(media_queue(redis, settings), settings, operation_id, key_token, again=again)


async def poll_model(
    operation_id: int, key_token: str, model_id: str, request_id: str
) -> dict[str, Any]:
    """The RQ job that asks fal about a request whose webhook has not come: records the
    outcome (once, as the webhook would) and enqueues the delivery; asks again later while
    the model runs, up to the operation's deadline (the sweeper refunds after it)."""
    settings = runtime.settings()
    job = get_current_job()
    redis = job.connection if job is not None else Redis.from_url(settings.REDIS_URL)
    async with runtime.resources(settings) as (sessionmaker, _bot):
        async with sessionmaker() as session:
            state = await model_calls.model_state(session, operation_id=operation_id)
        if state is None or state.key_token != key_token or not state.active:
            return {"operation_id": operation_id, "outcome": "nothing to poll"}
        if state.result is not None:  # the webhook came; its delivery may have been lost
            await asyncio.to_thread(
                _delivery, settings, redis, operation_id, key_token, again=True
            )
            return {"operation_id": operation_id, "outcome": "delivery enqueued"}
        try:
            session = runtime.http_session()
            async with fal.FalClient(fal_settings(settings), session=session) as client:
                seen = await client.poll(client.request(model_id, request_id))
        except fal.BackendError as exc:
            if not exc.transient:
                raise
            log.warning("operation %s: poll of %s failed: %s", operation_id, request_id, exc)
            seen = None
        if seen is None:
            deadline = state.deadline_at
            later = poll_delays(settings)[1]
            if deadline is not None and (deadline - utcnow()).total_seconds() > later:
                await asyncio.to_thread(
                    schedule_poll,
                    media_queue(redis, settings),
                    operation_id,
                    key_token,
                    model_id,
                    request_id,
                    after_seconds=later,
                )
            return {"operation_id": operation_id, "outcome": "still running"}
        status, output = seen
        if status == "OK":
            outcome = outcome_of(request_id, status, output, None)
        else:  # the result endpoint's error: {"status": 422, "detail": <its body>}
            error = f"Invalid status code: {output.get('status')}"
            outcome = outcome_of(request_id, status, output.get("detail"), error)
        async with sessionmaker() as session:
            recorded = await model_calls.record_result(
                session, request_id=request_id, result=outcome.as_record()
            )
            await session.commit()
    if recorded is not None and recorded.waiting:
        log.warning("operation %s: model outcome found by polling (no webhook)", operation_id)
        await asyncio.to_thread(
            _delivery, settings, redis, operation_id, key_token, again=not recorded.first
        )
        return {"operation_id": operation_id, "outcome": "recorded by poll"}
    return {"operation_id": operation_id, "outcome": "nothing to do"}


async def cancel_model_call(
    settings: Settings, sessionmaker: async_sessionmaker, operation_id: int
) -> bool:
    """Ask fal's queue to drop the request of an operation voided before its result came
    (the sweeper's refund at the deadline): the model stops spending on it and posts no
    webhook. Best effort — a webhook that comes anyway finds the operation voided and
    changes nothing (``model_calls.record_result``). True if the cancel was asked."""
    if not settings.fal_configured:
        return False
    async with sessionmaker() as session:
        state = await model_calls.model_state(session, operation_id=operation_id)
    if state is None or state.request_id is None or state.result is not None:
        return False
    call = model_call(state.type, state.model, settings)
    if call is None:
        return False
    session = runtime.http_session()
    async with fal.FalClient(fal_settings(settings, timeout=10.0), session=session) as client:
        await client.cancel(client.request(call.model_id, state.request_id))
    log.info("operation %s: its model request %s cancelled", operation_id, state.request_id)
    return True


def is_ai(op: Claimed, settings: Settings) -> ModelCall | None:
    """The operation's model call, or None for a local operation (or a test hook's)."""
    if settings.WORKER_TEST_HOOKS and op.test_hook:
        return None
    return model_call(op.op_type, op.model, settings)


__all__ = [
    "build_input",
    "cancel_model_call",
    "is_ai",
    "model_output",
    "poll_model",
    "submit",
    "webhook_url",
]
