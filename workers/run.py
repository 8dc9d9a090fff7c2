"""The RQ job of an operation: claim, download, run, deliver, post.

``run_operation(operation_id, file_ids, key_token)`` is what :mod:`jobqueue.queue` enqueues
(by the path ``workers.jobs.run_operation``, see :mod:`workers.jobs`). It claims the
operation (``claim_operation``, which extends its deadline past the job's timeout) while it
downloads the inputs from Telegram, shows progress, runs the media operation in a thread,
sends the result, and only then posts the hold (``complete_operation``). A job whose
operation already has an outcome does nothing, so a redelivered or duplicated job charges
and refunds nothing twice.

A refused input (no face, not an image...) is refunded here and the job ends normally; any
other failure goes on to RQ, whose callbacks refund (:mod:`workers.callbacks`). The job's
own watchdog fires just before RQ's SIGALRM and keeps the last part of its time for the
send: a result that is late fails before it is sent, so a photo is never delivered by a send
the watchdog cuts short and then refunded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiogram import Bot
from redis import Redis
from redis.exceptions import RedisError
from rq import get_current_job
from rq.job import Job
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import async_sessionmaker

from billing import offers
from billing import operations as billing_operations
from billing.db import one_statement_sessions
from billing.models import Funding, OperationStatus
from billing.settings import Settings
from imaging._image import MediaResult
from jobqueue import delivered, result_files
from workers import ai, delivery, messages, operations, runtime
from workers.claimed import Claimed, claimed
from workers.failures import Failure, OperationTimedOut, classify
from workers.lock import OperationLock
from workers.refunds import VOIDED, post_delivered, refund_and_notify

log = logging.getLogger(__name__)

POST_ATTEMPTS = 4

# The job's own watchdog fires this much before RQ's SIGALRM, so the failure is handled
# inside the event loop (SIGALRM may land in a side task, where it would be swallowed).
WATCHDOG_HEADROOM = 0.1  # a fraction of the timeout, at most MAX_HEADROOM seconds
MAX_HEADROOM = 5.0
# The last part of the watchdog's time is kept for sending the result: an operation that
# ends later fails before anything is sent. Were the watchdog to cut a sendPhoto in flight,
# Telegram could deliver the photo while the job is refunded (its answer never came back).
SEND_RESERVE = 0.2  # a fraction of the watchdog's time, at most MAX_SEND_RESERVE seconds
MAX_SEND_RESERVE = 15.0
SEND_MARGIN = 1.0  # seconds before the watchdog: no wait for Telegram and no copy goes past
RECORD_DELIVERY_SECONDS = 5.0  # the delivery time's write (best effort) holds the job no longer
CAPTION_READ_SECONDS = 3.0  # the plans offer's claim waits no longer


class RunInAHorse(Exception):  # noqa: N818 - a routing signal, not an error
    """A job the worker runs in its own process (queued as a hosted model's submit) found a
    local operation: CPU-bound work that may crash goes to a work-horse (workers.jobs)."""


def _watchdog_seconds(job: Job | None, settings: Settings) -> float:
    timeout = runtime.job_timeout(job, settings)
    return max(0.5, timeout - min(MAX_HEADROOM, timeout * WATCHDOG_HEADROOM))


def _send_reserve(watchdog_seconds: float) -> float:
    return min(MAX_SEND_RESERVE, watchdog_seconds * SEND_RESERVE)


def _processing_seconds(job: Job | None, settings: Settings) -> float:
    """How long a job may take before it sends its result (the rest is the send's)."""
    seconds = _watchdog_seconds(job, settings)
    return seconds - _send_reserve(seconds)


async def deliver_model_result(
    operation_id: int, file_ids: list[str] | None = None, key_token: str | None = None
) -> dict[str, Any]:
    """The RQ job that delivers what an AI operation's model made (enqueued by the webhook
    or the status poll): :func:`run_operation`'s claim, send and post around the recorded
    outcome instead of a local run (:mod:`workers.ai`)."""
    return await run_operation(operation_id, file_ids, key_token, deliver=True)


async def run_operation(
    operation_id: int,
    file_ids: list[str] | None = None,
    key_token: str | None = None,
    *,
    deliver: bool = False,
) -> dict[str, Any]:
    """Run one operation end to end (the RQ job). Returns what happened, for RQ's result.

    ``file_ids``, when the bot passes them, are fetched while the operation is claimed; the
    claimed row decides what is used (other ids there: those are fetched instead).
    ``key_token``, the operation's when it was queued, names the lock and the "delivered"
    marker, and the claim takes only the operation that has it: a job left in Redis by a
    database that started again (same id, another operation) does nothing."""
    settings = runtime.settings()
    job = get_current_job()
    redis = job.connection if job is not None else Redis.from_url(settings.REDIS_URL)
    if key_token is None:
        # A job queued before key tokens (``op-<id>``, by a bot of the previous version):
        # the row's token names its keys, so it shares the lock and marker with every other
        # path, and no old marker is ever read. What is left: such a job, were the database
        # also reset while it waited, runs the new operation of its id (once, under that
        # one's lock); a marker the previous version wrote by bare id for a result whose
        # post had failed is not seen. Both only for the queue of the upgrade, drained in
        # minutes — cheaper than a second key scheme; every newer job carries its token.
        key_token = await runtime.row_key_token(settings, operation_id)
        if key_token is None:
            log.warning("operation %s does not exist: nothing to do", operation_id)
            return {"operation_id": operation_id, "outcome": "skipped"}
        if job is not None:
            job.meta["key_token"] = key_token  # for on_job_failure, in this same process
    # The claim's deadline and the lock follow the job's own timeout, as RQ and the watchdog
    # do: a worker whose JOB_TIMEOUT_SECONDS differs from the bot's must not let the sweeper
    # void an operation this job may still deliver.
    deadline = runtime.deadline_seconds(settings, job)
    lock = OperationLock(redis, operation_id, key_token, ttl=deadline)
    if not lock.acquire():
        log.warning("operation %s: another execution holds it, nothing to do", operation_id)
        return {"operation_id": operation_id, "outcome": "busy"}
    seconds = _watchdog_seconds(job, settings)
    end = asyncio.get_running_loop().time() + seconds
    # Until the result is ready, the watchdog fires early (SEND_RESERVE); then it moves on.
    watchdog = asyncio.timeout_at(end - _send_reserve(seconds))
    try:
        async with watchdog:
            return await _run(
                settings,
                operation_id,
                key_token,
                redis,
                lock.delivered,
                file_ids,
                sending=lambda: watchdog.reschedule(end),
                send_until=end - SEND_MARGIN,
                deadline_seconds=deadline,
                deliver=deliver,
            )
    except TimeoutError:
        if watchdog.expired():
            raise OperationTimedOut(seconds) from None
        raise
    except Exception as exc:
        failure = classify(exc)
        if not failure.expected:
            raise
        return await _refuse(settings, operation_id, key_token, failure, exc)
    finally:
        lock.release()


async def _refuse(
    settings: Settings, operation_id: int, key_token: str, failure: Failure, exc: Exception
) -> dict[str, Any]:
    """The user's input cannot be processed (no face, not an image, too small...): refund
    and tell the user here, and end the job normally. Raised, it would reach RQ, which logs
    every exception as an ERROR with its traceback. The refund is conditional as on every
    path; if it fails (the database is down), the exception goes on to RQ after all and
    :func:`on_job_failure` (or the sweeper) refunds."""
    try:
        await refund_and_notify(
            settings, operation_id, failure, detail=str(exc), key_token=key_token
        )
    except Exception:  # noqa: BLE001 - the failure callback refunds instead
        log.warning("operation %s: refund of a refused input failed", operation_id, exc_info=True)
        raise exc from None
    return {"operation_id": operation_id, "outcome": "refused", "reason": failure.reason}


async def _run(
    settings: Settings,
    operation_id: int,
    key_token: str,
    redis: Redis,
    delivered_ref: dict[str, Any] | None,
    file_ids: list[str] | None,
    *,
    sending: Callable[[], None] = lambda: None,
    send_until: float | None = None,
    deadline_seconds: int,
    deliver: bool = False,
) -> dict[str, Any]:
    async with runtime.resources(settings) as (sessionmaker, bot):
        if delivered_ref is not None:
            await post_delivered(sessionmaker, operation_id, key_token, delivered_ref)
            return {"operation_id": operation_id, "outcome": "already delivered"}
        # The claim and the post are one statement each, committed by themselves.
        one_statement = one_statement_sessions(sessionmaker)
        # The inputs are fetched meanwhile: Telegram and the database at once.
        prefetch = (
            asyncio.create_task(_download(bot, settings, file_ids))
            if file_ids and not deliver
            else None
        )
        try:
            async with one_statement() as session:
                row = await billing_operations.claim_operation(
                    session,
                    operation_id=operation_id,
                    deadline_seconds=deadline_seconds,
                    key_token=key_token,
                )
                await session.commit()
        except BaseException:
            _drop(prefetch)
            raise
        if row is None:
            _drop(prefetch)
            async with one_statement() as session:
                token = await billing_operations.operation_key_token(
                    session, operation_id=operation_id
                )
            if token != key_token:
                log.warning(
                    "operation %s: this job was queued for an operation of another database "
                    "(%s here): nothing to do",
                    operation_id,
                    "another key token" if token else "no such operation",
                )
                return {"operation_id": operation_id, "outcome": "not this database's"}
            log.info("operation %s already has an outcome: nothing to do", operation_id)
            return {"operation_id": operation_id, "outcome": "skipped"}
        try:
            op = claimed(row)
        except BaseException:
            _drop(prefetch)
            raise
        log.info("operation %s (%s): attempt %s", op.id, op.op_type, op.attempts)
        if prefetch is not None and list(file_ids or ()) != op.file_ids:
            log.warning("operation %s: the job named other inputs than its row", op.id)
            _drop(prefetch)
            prefetch = None

        call = None if deliver else ai.is_ai(op, settings)
        if call is None and not deliver and runtime.kept():
            _drop(prefetch)
            log.warning("operation %s: runs locally, not on a model: to a work-horse", op.id)
            raise RunInAHorse(op.id)
        # Progress and inputs at once: the status edit, the chat action, the downloads. The
        # delivery of a model's result showed "обрабатываю…" when it was submitted.
        status_edit = asyncio.create_task(
            asyncio.sleep(0) if deliver else _show_processing(bot, op)
        )
        try:
            async with delivery.chat_action(bot, op.chat_id):
                if deliver:
                    result = await ai.model_output(settings, one_statement, op)
                else:
                    if prefetch is not None:
                        inputs = await prefetch
                    else:
                        inputs = await _download(bot, settings, op.file_ids)
                    if call is not None:
                        # Submitted to the model's queue: the job ends, the webhook delivers.
                        operations.check_sizes(op.op_type, inputs)
                        submitted = await ai.submit(
                            settings, op, call, inputs, sessionmaker=one_statement, redis=redis
                        )
                        await status_edit
                        return submitted
                    result = await _perform(settings, op, inputs, redis)
            await status_edit  # "обрабатываю…" shows before the result, never after it
            offer = await _offer(one_statement, op)
            caption = messages.result_caption(
                result,
                funding=op.funding,
                price=op.price,
                balance=op.balance,
                free_left=op.free_left,
                language=op.language,
                units=op.units,
                units_left=op.units_left,
                offer=offer,
            )
            sending()  # the result is ready: the send may use the time kept for it

            marked: list[dict[str, Any]] = []

            async def photo_delivered(ref: dict[str, Any]) -> None:
                # A failure from here on posts, never refunds.
                await asyncio.to_thread(delivered.mark, redis, op.id, op.key_token, ref)
                marked.append(ref)
                await _record_delivery(one_statement, op.id)

            async def keep_file(message_id: int) -> bool:
                # The lossless copy, for the result's button (the bot sends it on a tap).
                try:
                    await asyncio.to_thread(
                        result_files.keep,
                        redis,
                        bot.id,
                        op.chat_id,
                        message_id,
                        result.data,
                        result.filename,
                        seconds=settings.RESULT_FILE_KEEP_SECONDS,
                    )
                except RedisError as exc:
                    log.warning("operation %s: lossless file not kept: %r", op.id, exc)
                    return False
                return True

            sent = await delivery.send_result(
                bot,
                op.chat_id,
                result,
                caption=caption,
                lossless=operations.lossless(op.op_type),
                status_message_id=op.status_message_id,
                until=send_until,
                on_photo=photo_delivered,
                reply_markup=messages.offer_keyboard(op.language) if offer else None,
                file_button=messages.file_button(op.language),
                keep_file=keep_file,
            )
        except BaseException:
            status_edit.cancel()  # the failure path removes the status message
            _drop(prefetch)
            raise

        # Delivered: from here on the operation is posted, never voided (see delivered.py).
        if marked != [sent]:
            await asyncio.to_thread(delivered.mark, redis, op.id, op.key_token, sent)

        # Post the hold. A database blip is retried; if it outlasts the job, the failure
        # paths find the marker and post it.
        async def post() -> bool:
            for attempt in range(POST_ATTEMPTS):
                try:
                    async with one_statement() as session:
                        posted = await billing_operations.complete_operation(
                            session, operation_id=op.id, result_ref=sent
                        )
                        await session.commit()
                        if not posted and attempt > 0:
                            # An earlier attempt may have committed and lost its answer.
                            status = await billing_operations.operation_status(
                                session, operation_id=op.id
                            )
                            posted = status == OperationStatus.SUCCEEDED.value
                        return posted
                except (DBAPIError, OSError) as exc:
                    if attempt + 1 == POST_ATTEMPTS:
                        raise
                    log.warning("operation %s: post failed, retrying: %s", op.id, exc)
                    await asyncio.sleep(0.5 * 2**attempt)
            return False

        posted = await post()
        # The job needs the database no more: close the connection now, not after (the
        # worker's own process keeps its pool for the next job).
        if not runtime.kept():
            await sessionmaker.kw["bind"].dispose()
        if not posted:  # voided while we delivered: the user has the result and the money
            log.error(
                "operation %s: result delivered but the operation was voided (refunded)", op.id
            )
        return {
            "operation_id": op.id,
            "outcome": "succeeded" if posted else "voided",
            "result": sent,
        }


async def _offer(sessionmaker: async_sessionmaker, op: Claimed) -> str | None:
    """The plans offer for the caption, if it is due for this user (claimed for the day by
    one conditional UPDATE, so two results at once show it once). Best effort."""
    if op.free_left > offers.OFFER_FREE_LEFT or op.funding == Funding.SUBSCRIPTION:
        return None  # most results (and every subscriber's): no statement at all
    try:
        async with asyncio.timeout(CAPTION_READ_SECONDS), sessionmaker() as session:
            free_left = await offers.claim_plans_offer(session, user_id=op.user_id)
            await session.commit()
    except (DBAPIError, OSError, TimeoutError) as exc:
        log.warning("operation %s: the plans offer skipped: %r", op.id, exc)
        return None
    return None if free_left is None else messages.offer_line(free_left, op.language)


async def _record_delivery(sessionmaker: async_sessionmaker, operation_id: int) -> None:
    """Write on the operation's row that its result reached the chat, right after Telegram
    accepted it. Best effort: the "delivered" marker already keeps the refund paths off, and
    posting the hold writes the time too. A row already voided is an error to look at."""
    try:
        async with asyncio.timeout(RECORD_DELIVERY_SECONDS), sessionmaker() as session:
            status = await billing_operations.record_delivery(session, operation_id=operation_id)
            await session.commit()
    except (DBAPIError, OSError, TimeoutError) as exc:
        log.warning("operation %s: delivery time not written: %r", operation_id, exc)
        return
    if status in VOIDED:
        log.error(
            "operation %s: its result reached the chat, but the operation was already voided "
            "(%s): the user has both the result and the refund",
            operation_id,
            status,
        )


async def _download(bot: Bot, settings: Settings, file_ids: list[str]) -> list[bytes]:
    inputs = await asyncio.gather(
        *(
            delivery.download(bot, file_id, max_bytes=settings.MAX_INPUT_FILE_BYTES)
            for file_id in file_ids
        )
    )
    return list(inputs)


def _drop(task: asyncio.Task | None) -> None:
    """Cancel a task whose result is not wanted, and let nothing it raised escape."""
    if task is None:
        return
    task.cancel()
    # Not awaited (that would swallow a cancellation of the caller): only retrieved.
    task.add_done_callback(lambda t: t.cancelled() or t.exception())


async def _show_processing(bot: Bot, op: Claimed) -> None:
    if op.status_message_id is not None:
        await delivery.best_effort(
            lambda: bot.edit_message_text(
                text=messages.processing(op.language),
                chat_id=op.chat_id,
                message_id=op.status_message_id,
            ),
            what="status message",
        )


async def _perform(
    settings: Settings, op: Claimed, inputs: list[bytes], redis: Redis
) -> MediaResult:
    """The media operation, in a thread of its own (CPU-bound; the loop keeps the chat
    action going). The thread is not waited for on a timeout: the work-horse exits."""

    def publish_pid(pid: int) -> None:
        redis.set(operations.hook_pid_key(op.id, op.key_token), f"{pid}:{op.attempts}", ex=3600)

    if settings.WORKER_TEST_HOOKS and op.test_hook:
        if operations.hang_in_loop_thread(op.test_hook, publish_pid=publish_pid):
            return operations.noop(inputs)
        pseudo = operations.hook_operation(op.test_hook, publish_pid=publish_pid)
        if pseudo is not None:
            return await _in_thread(pseudo, inputs)
    if operations.is_remote(op.op_type):
        # Network-bound, async: in the loop, bounded below the job's watchdog.
        budget = max(5.0, _processing_seconds(get_current_job(), settings) - 5.0)
        return await operations.run_remote(
            op.op_type, inputs, op.text, settings, budget=min(120.0, budget)
        )
    return await _in_thread(operations.run_local, op.op_type, inputs, op.text, settings)


async def _in_thread(fn: Any, *args: Any) -> MediaResult:
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="media")
    try:
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
