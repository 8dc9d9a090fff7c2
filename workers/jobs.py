"""The RQ job of an operation and everything that refunds it when it does not succeed.

``run_operation(operation_id, file_ids)`` is what :mod:`jobqueue.queue` enqueues. It claims
the operation (``claim_operation``, which extends its deadline past the job's timeout) while
it downloads the inputs from Telegram, shows progress, runs the media operation in a thread,
sends the result, and only then posts the hold (``complete_operation``). A job whose operation
already has an outcome does nothing, so a redelivered or duplicated job charges and refunds
nothing twice.

Refunds, each exactly once (``refund_operation`` is conditional; only the caller that
voided the hold tells the user):

- the job raises: :func:`on_job_failure` (RQ's on_failure, run on EVERY failed attempt)
  refunds after the last attempt, or at once for a permanent failure (it then also cancels
  the remaining retries);
- the job passes its timeout: the job's own watchdog just before RQ's SIGALRM, or the
  SIGALRM itself, ends in :func:`on_job_failure` as a permanent failure. The watchdog keeps
  the last part of its time for the send: a result that is late fails before it is sent,
  so a photo is not delivered by a send the watchdog cuts short and then refunded;
- the work-horse is killed: RQ calls no failure callback, the worker calls
  :func:`on_work_horse_killed` (see :class:`workers.worker.MediaWorker`);
- the worker dies with its horse: :mod:`workers.sweeper` voids operations past their
  deadline, and RQ's abandoned-job cleanup ends in :func:`on_job_failure`;
- the result cannot be delivered: a :class:`JobFailure` ("undeliverable"), transient for
  Telegram 5xx/429/network errors.

Engines, sessions and the Bot are created inside each job and each callback: RQ forks a
work-horse per job and runs an ``async def`` job in a fresh event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramRetryAfter
from redis import Redis
from rq import get_current_job
from rq.exceptions import AbandonedJobError, StopRequested
from rq.job import Job
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing import redaction, service
from billing.db import make_sessionmaker, one_statement_sessions
from billing.errors import OperationDelivered, OperationNotFound, OperationNotRefundable
from billing.models import OperationStatus
from billing.prices import OperationType, operation_type
from billing.settings import Settings
from imaging._image import MediaResult
from jobqueue import delivered
from jobqueue.queue import JOB_FUNCTION, LOCK_PREFIX, key_name
from texts.i18n import pick_language
from workers import delivery, messages, operations, runtime
from workers.failures import Failure, OperationTimedOut, classify

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
RECORD_DELIVERY_SECONDS = 5.0  # the delivery time's write must not eat the document copy's
VOIDED = (OperationStatus.REFUNDED.value, OperationStatus.FAILED.value)


# --- the pieces a job needs -----------------------------------------------------------


@asynccontextmanager
async def resources(settings: Settings) -> AsyncIterator[tuple[async_sessionmaker, Bot]]:
    """A sessionmaker and a Bot for one job or callback, closed at the end."""
    engine = runtime.take_engine(settings)
    try:
        bot = runtime.make_job_bot(settings)
        try:
            yield make_sessionmaker(engine), bot
        finally:
            await runtime.close_job_bot(bot)
    finally:
        try:
            await engine.dispose()
        finally:
            runtime.give_back_engine(engine)


@dataclass(frozen=True)
class Claimed:
    id: int
    user_id: int
    telegram_id: int
    op_type: OperationType
    price: int
    funding: str
    chat_id: int
    status_message_id: int | None
    file_ids: list[str]
    text: str | None
    language: str
    test_hook: str | None
    attempts: int
    key_token: str  # names the operation's Redis keys (jobqueue.queue.key_name)
    balance: int  # the user's, right after the claim: for the caption's "what is left"
    free_left: int


def _language(input_ref: dict[str, Any] | None, user_language: str | None) -> str:
    language = (input_ref or {}).get("language") or user_language
    return pick_language(language if isinstance(language, str) else None)


def _claimed(row: Any) -> Claimed:
    """A :class:`Claimed` from a row of ``service.CLAIMED_COLUMNS``."""
    ref = dict(row.input_ref or {})
    file_ids = [str(f) for f in ref.get("file_ids") or []]
    text = ref.get("text")
    hook = ref.get("test_hook")
    return Claimed(
        id=row.id,
        user_id=row.user_id,
        telegram_id=row.telegram_id,
        op_type=operation_type(row.type),
        price=row.price,
        funding=row.funding,
        chat_id=row.chat_id if row.chat_id is not None else row.telegram_id,
        status_message_id=row.status_message_id,
        file_ids=file_ids,
        text=text if isinstance(text, str) else None,
        language=_language(ref, row.language),
        test_hook=str(hook) if hook is not None else None,
        attempts=row.attempts,
        key_token=row.key_token,
        balance=row.balance,
        free_left=row.free_operations_left,
    )


async def _load(session: AsyncSession, operation_id: int) -> Claimed:
    row = await service.claimed_operation(session, operation_id=operation_id)
    if row is None:
        raise OperationNotFound(operation_id)
    return _claimed(row)


class OperationLock:
    """One execution of an operation at a time (a job enqueued twice, an orphaned horse).

    The value names the holder's pid, so the worker can free the lock of a horse it saw
    die; the TTL frees the lock of a worker that died with its horse.
    """

    def __init__(self, redis: Redis, operation_id: int, key_token: str, ttl: int) -> None:
        self.redis = redis
        self.operation_id = operation_id
        self.key_token = key_token
        self.key = lock_key(operation_id, key_token)
        self.ttl = ttl
        self.value = f"{os.getpid()}:{uuid.uuid4().hex}"
        # Read with the lock, in the same round trip: the "delivered" marker (delivered.py).
        self.delivered: dict[str, Any] | None = None

    def acquire(self) -> bool:
        reply = self.redis.eval(
            _ACQUIRE,
            2,
            self.key,
            delivered.key(self.operation_id, self.key_token),
            self.value,
            self.ttl,
        )
        if not reply or not int(reply[0]):
            return False
        self.delivered = delivered.parse(reply[1] if len(reply) > 1 else None)
        return True

    def release(self) -> None:
        self.redis.eval(_RELEASE, 1, self.key, self.value)


# Take the lock (KEYS[1]) if it is free; if taken, also return the marker KEYS[2] (or nil).
_ACQUIRE = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return {0}
end
return {1, redis.call('GET', KEYS[2])}
"""

# Delete the key if its value starts with ARGV[1] (the holder's "pid:" or its whole value).
_RELEASE = """
local v = redis.call('GET', KEYS[1])
if v and (ARGV[1] == '' or string.sub(v, 1, string.len(ARGV[1])) == ARGV[1]) then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def lock_key(operation_id: int, key_token: str) -> str:
    return f"{LOCK_PREFIX}{key_name(operation_id, key_token)}"


def release_lock(
    redis: Redis, operation_id: int, key_token: str, *, holder_pid: int | None
) -> None:
    """Free an operation's lock if the process ``holder_pid`` holds it (anyone's if None)."""
    prefix = f"{holder_pid}:" if holder_pid is not None else ""
    redis.eval(_RELEASE, 1, lock_key(operation_id, key_token), prefix)


def _watchdog_seconds(job: Job | None, settings: Settings) -> float:
    timeout = runtime.job_timeout(job, settings)
    return max(0.5, timeout - min(MAX_HEADROOM, timeout * WATCHDOG_HEADROOM))


def _send_reserve(watchdog_seconds: float) -> float:
    return min(MAX_SEND_RESERVE, watchdog_seconds * SEND_RESERVE)


def _processing_seconds(job: Job | None, settings: Settings) -> float:
    """How long a job may take before it sends its result (the rest is the send's)."""
    seconds = _watchdog_seconds(job, settings)
    return seconds - _send_reserve(seconds)


# --- the job --------------------------------------------------------------------------


async def run_operation(
    operation_id: int, file_ids: list[str] | None = None, key_token: str | None = None
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
        key_token = await _row_key_token(settings, operation_id)
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


async def _row_key_token(settings: Settings, operation_id: int) -> str | None:
    """The operation's key token, read from its row (None if there is no such operation)."""
    engine = runtime.take_engine(settings)
    try:
        async with make_sessionmaker(engine)() as session:
            return await service.operation_key_token(session, operation_id=operation_id)
    finally:
        try:
            await engine.dispose()
        finally:
            runtime.give_back_engine(engine)


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
) -> dict[str, Any]:
    async with resources(settings) as (sessionmaker, bot):
        if delivered_ref is not None:
            await _post_delivered(sessionmaker, operation_id, key_token, delivered_ref)
            return {"operation_id": operation_id, "outcome": "already delivered"}
        # The claim and the post are one statement each, committed by themselves.
        one_statement = one_statement_sessions(sessionmaker)
        # The inputs are fetched meanwhile: Telegram and the database at once.
        prefetch = asyncio.create_task(_download(bot, settings, file_ids)) if file_ids else None
        try:
            async with one_statement() as session:
                row = await service.claim_operation(
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
                token = await service.operation_key_token(session, operation_id=operation_id)
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
            op = _claimed(row)
        except BaseException:
            _drop(prefetch)
            raise
        log.info("operation %s (%s): attempt %s", op.id, op.op_type, op.attempts)
        if prefetch is not None and list(file_ids or ()) != op.file_ids:
            log.warning("operation %s: the job named other inputs than its row", op.id)
            _drop(prefetch)
            prefetch = None

        # Progress and inputs at once: the status edit, the chat action, the downloads.
        status_edit = asyncio.create_task(_show_processing(bot, op))
        try:
            async with delivery.chat_action(bot, op.chat_id):
                if prefetch is not None:
                    inputs = await prefetch
                else:
                    inputs = await _download(bot, settings, op.file_ids)
                result = await _perform(settings, op, inputs, redis)
            await status_edit  # "обрабатываю…" shows before the result, never after it
            caption = messages.result_caption(
                result,
                funding=op.funding,
                price=op.price,
                balance=op.balance,
                free_left=op.free_left,
                language=op.language,
            )
            sending()  # the result is ready: the send may use the time kept for it

            marked: list[dict[str, Any]] = []

            async def photo_delivered(ref: dict[str, Any]) -> None:
                # Before its document copy: a failure from here on posts, never refunds.
                await asyncio.to_thread(delivered.mark, redis, op.id, op.key_token, ref)
                marked.append(ref)
                await _record_delivery(one_statement, op.id)

            sent = await delivery.send_result(
                bot,
                op.chat_id,
                result,
                caption=caption,
                document_caption=messages.document_caption(op.language),
                lossless=operations.lossless(op.op_type),
                until=send_until,
                on_photo=photo_delivered,
            )
        except BaseException:
            status_edit.cancel()  # the failure path removes the status message
            _drop(prefetch)
            raise

        # Delivered: from here on the operation is posted, never voided (see delivered.py).
        if marked != [sent]:  # a document too, or no photo: the marker names all of it
            await asyncio.to_thread(delivered.mark, redis, op.id, op.key_token, sent)
        if not marked:  # no photo: the document is the result
            await _record_delivery(one_statement, op.id)

        # Post the hold. The status message goes meanwhile (cosmetic). A database blip is
        # retried; if it outlasts the job, the failure paths find the marker and post it.
        async def post() -> bool:
            for attempt in range(POST_ATTEMPTS):
                try:
                    async with one_statement() as session:
                        posted = await service.complete_operation(
                            session, operation_id=op.id, result_ref=sent
                        )
                        await session.commit()
                        if not posted and attempt > 0:
                            # An earlier attempt may have committed and lost its answer.
                            status = await service.operation_status(session, operation_id=op.id)
                            posted = status == OperationStatus.SUCCEEDED.value
                        return posted
                except (DBAPIError, OSError) as exc:
                    if attempt + 1 == POST_ATTEMPTS:
                        raise
                    log.warning("operation %s: post failed, retrying: %s", op.id, exc)
                    await asyncio.sleep(0.5 * 2**attempt)
            return False

        async def post_and_disconnect() -> bool:
            posted = await post()
            # The job needs the database no more: close the connection now, while the
            # status message goes, instead of after (``resources`` finds nothing to close).
            await sessionmaker.kw["bind"].dispose()
            return posted

        # The removal is cosmetic: whatever it raises must not cut the post short.
        posted, removed = await asyncio.gather(
            post_and_disconnect(), _remove_status(bot, op), return_exceptions=True
        )
        if isinstance(posted, BaseException):
            raise posted
        if isinstance(removed, Exception):
            log.warning("operation %s: status message not removed: %r", op.id, removed)
        elif isinstance(removed, BaseException):
            raise removed
        if not posted:  # voided while we delivered: the user has the result and the money
            log.error(
                "operation %s: result delivered but the operation was voided (refunded)", op.id
            )
        return {
            "operation_id": op.id,
            "outcome": "succeeded" if posted else "voided",
            "result": sent,
        }


async def _record_delivery(sessionmaker: async_sessionmaker, operation_id: int) -> None:
    """Write on the operation's row that its result reached the chat, right after Telegram
    accepted it. Best effort: the "delivered" marker already keeps the refund paths off, and
    posting the hold writes the time too. A row already voided is an error to look at."""
    try:
        async with asyncio.timeout(RECORD_DELIVERY_SECONDS), sessionmaker() as session:
            status = await service.record_delivery(session, operation_id=operation_id)
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


async def _remove_status(bot: Bot, op: Claimed) -> None:
    if op.status_message_id is not None:
        await delivery.best_effort(
            lambda: bot.delete_message(op.chat_id, op.status_message_id),
            what="delete status message",
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


# --- refunds --------------------------------------------------------------------------


async def refund_and_notify(
    settings: Settings,
    operation_id: int,
    failure: Failure,
    *,
    detail: str = "",
    key_token: str | None = None,
) -> service.RefundResult | None:
    """:func:`void_and_notify` with a sessionmaker and a Bot of its own."""
    async with resources(settings) as (sessionmaker, bot):
        return await void_and_notify(
            sessionmaker,
            bot,
            operation_id,
            failure,
            detail=detail,
            redis_url=settings.REDIS_URL,
            key_token=key_token,
        )


async def _post_if_delivered(
    sessionmaker: async_sessionmaker, redis_url: str | None, operation_id: int, key_token: str
) -> bool:
    """Post the hold of an operation whose result already reached the chat. True if so."""
    ref = await asyncio.to_thread(delivered.lookup, redis_url, operation_id, key_token)
    if ref is None:
        return False
    await _post_delivered(sessionmaker, operation_id, key_token, ref)
    return True


async def _post_delivered(
    sessionmaker: async_sessionmaker, operation_id: int, key_token: str, ref: dict[str, Any]
) -> None:
    """Post the hold of an operation whose result ``ref`` already reached the chat."""
    async with sessionmaker() as session:
        if await service.operation_key_token(session, operation_id=operation_id) != key_token:
            # The marker is of another operation with this id (a database that started
            # again): posting it would charge for a result that never came.
            log.error(
                "operation %s: a delivered marker of another key token; not posted",
                operation_id,
            )
            return
        posted = await service.complete_operation(
            session, operation_id=operation_id, result_ref=ref or None
        )
        status = (
            None if posted else await service.record_delivery(session, operation_id=operation_id)
        )
        await session.commit()
    if status in VOIDED:
        log.error(
            "operation %s: its result was delivered, but the operation was already voided "
            "(%s): the user has both the result and the refund",
            operation_id,
            status,
        )
        return
    log.warning(
        "operation %s: its result was delivered; %s instead of voided",
        operation_id,
        "posted" if posted else "already settled",
    )


async def void_and_notify(
    sessionmaker: async_sessionmaker,
    bot: Bot,
    operation_id: int,
    failure: Failure,
    *,
    detail: str = "",
    only_if_overdue_at: datetime | None = None,
    redis_url: str | None = None,
    key_token: str | None = None,
) -> service.RefundResult | None:
    """Void the operation's hold and tell the user, once: only the caller whose conditional
    update voided it sends the notice. None when it already had an outcome (or, for the
    sweeper's ``only_if_overdue_at``, when a job claimed it meanwhile). ``key_token``, a
    failed job's: when the row has another, the job was of another database and its
    failure is not this operation's (nothing is voided)."""
    async with sessionmaker() as session:
        row_token = await service.operation_key_token(session, operation_id=operation_id)
    if key_token is not None and row_token is not None and row_token != key_token:
        log.warning(
            "operation %s: the failed job was queued for another operation of this id "
            "(another key token): not voided",
            operation_id,
        )
        return None
    if row_token is not None and await _post_if_delivered(
        sessionmaker, redis_url, operation_id, row_token
    ):
        return None
    async with sessionmaker() as session:
        try:
            refund = await service.refund_operation(
                session,
                operation_id=operation_id,
                # The column is kept for years: no secret in it (an exception may quote one).
                error=redaction.redact(f"{failure.reason}: {detail}")
                if detail
                else failure.reason,
                only_if_overdue_at=only_if_overdue_at,
            )
        except OperationDelivered:
            # Telegram accepted its result (delivered_at) though no Redis marker said so
            # (Redis lost it): posted, as the marker would have made it.
            await session.rollback()
            refund = None
            delivered_in_db = True
        except (OperationNotRefundable, OperationNotFound) as exc:
            await session.rollback()
            log.warning("operation %s: not refunded: %s", operation_id, exc)
            return None
        else:
            delivered_in_db = False
        if delivered_in_db and row_token is not None:
            await _post_delivered(sessionmaker, operation_id, row_token, {})
            return None
        if refund is None:
            await session.rollback()
            log.info("operation %s was already voided", operation_id)
            return None
        op = await _load(session, operation_id)
        await session.commit()
    # A refused input is routine (INFO); anything else is worth a look (WARNING).
    log.log(
        logging.INFO if failure.expected else logging.WARNING,
        "operation %s voided (%s%s): %s kopecks and %s free operations back",
        op.id,
        failure.reason,
        f": {detail}" if failure.expected and detail else "",
        refund.amount,
        refund.free_back,
    )
    notice = messages.failure_notice(failure, refund, op.language)
    try:
        await delivery.call(lambda: bot.send_message(op.chat_id, notice), what="refund notice")
    except delivery.COSMETIC_ERRORS as exc:
        log.error("operation %s: refund notice not delivered: %s", op.id, exc)
    if op.status_message_id is not None:
        await delivery.best_effort(
            lambda: bot.delete_message(op.chat_id, op.status_message_id),
            what="delete status message",
        )
    return refund


def operation_id_of(job: Job) -> int | None:
    """The operation a job runs, or None for a job that is not ours."""
    try:
        if job.func_name != JOB_FUNCTION or not job.args:
            return None
        return int(job.args[0])
    except Exception:  # noqa: BLE001 - a job we cannot even read is not ours to refund
        return None


def job_key_token(job: Job) -> str | None:
    """The key token a job was queued with (its third argument, also in its id), or the one
    :func:`run_operation` read from the row for a job queued in the old form (``job.meta``,
    seen only in that process). None if neither."""
    try:
        args = job.args or ()
        if len(args) > 2 and isinstance(args[2], str):
            return args[2]
        token = (getattr(job, "meta", None) or {}).get("key_token")
        return token if isinstance(token, str) else None
    except Exception:  # noqa: BLE001 - unreadable: treated as unknown
        return None


def _key_token_of(job: Job, operation_id: int) -> str | None:
    """:func:`job_key_token`, else the row's (a job of the old form, in another process).
    None when not known: the lock is then left to its TTL."""
    token = job_key_token(job)
    if token is not None:
        return token
    try:
        return asyncio.run(_row_key_token(runtime.settings(), operation_id))
    except StopRequested:
        raise
    except Exception:  # noqa: BLE001 - the database may be down
        log.exception("operation %s: key token not readable", operation_id)
        return None


def on_job_failure(job: Job, connection: Redis, exc_type: Any, exc_value: Any, tb: Any) -> None:
    """RQ's on_failure: runs after EVERY failed attempt (and for abandoned jobs when RQ
    cleans its started registry). Refunds after the last attempt, or at once when the
    failure is permanent — then it also cancels the retries left."""
    operation_id = operation_id_of(job)
    if operation_id is None:
        return
    # An abandoned job is reported by whichever worker cleans RQ's registry, not by the
    # process that ran it: that one's lock is not ours to free (and a pid in another
    # container may even be the same number).
    abandoned = isinstance(exc_value, AbandonedJobError)
    key_token = _key_token_of(job, operation_id)
    if not abandoned and key_token is not None:
        try:
            release_lock(connection, operation_id, key_token, holder_pid=os.getpid())
        except Exception:  # noqa: BLE001 - the lock expires by itself
            log.exception("operation %s: lock not released", operation_id)
    failure = classify(exc_value)
    retries_left = job.retries_left or 0
    if failure.transient and retries_left > 0:
        flood = flood_wait(exc_value)
        if flood is not None and not _wait_before_retry(job, flood, runtime.settings()):
            log.warning(
                "operation %s: Telegram asks to wait %s s, past the operation's deadline",
                operation_id,
                flood,
            )
            retries_left = 0
    if failure.transient and retries_left > 0:
        log.warning(
            "operation %s: attempt failed (%s: %s), %s retries left",
            operation_id,
            failure.reason,
            exc_value,
            retries_left,
        )
        return
    # RQ decides on a retry right after this callback, from this very Job object.
    job.retries_left = 0
    if abandoned and _still_running(connection, operation_id, key_token):
        # The worker died but its work-horse (a process group of its own) may live on and
        # deliver: refunding now could pay back a result the user gets. The horse posts or
        # fails by itself; if it dies too, the sweeper voids the operation at its deadline.
        log.warning(
            "operation %s: its job was abandoned, but an execution still holds it: "
            "left to that execution or, past the deadline, to the sweeper",
            operation_id,
        )
        return
    _refund_now(operation_id, failure, detail=repr(exc_value), key_token=key_token)


def _still_running(connection: Redis | None, operation_id: int, key_token: str | None) -> bool:
    """Whether some execution holds the operation's lock (unknown counts as yes: the sweeper
    still voids the operation at its deadline)."""
    if key_token is None:
        return True
    try:
        redis = connection or Redis.from_url(runtime.settings().REDIS_URL)
        return bool(redis.exists(lock_key(operation_id, key_token)))
    except Exception:  # noqa: BLE001 - Redis down: not known to be free
        log.exception("operation %s: lock not readable", operation_id)
        return True


def flood_wait(exc: BaseException | None) -> int | None:
    """Telegram's ``retry_after`` behind a failure (its flood control), if that is what it was."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, TelegramRetryAfter):
            return int(exc.retry_after)
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def _wait_before_retry(job: Job, seconds: int, settings: Settings) -> bool:
    """Make RQ's next retry of ``job`` wait at least ``seconds`` (plus one), as Telegram asked
    (RQ decides on the retry right after the failure callback, from this Job object).
    False when that wait would run past the operation's deadline: the sweeper could void it
    meanwhile, so the caller refunds now instead. The claim, on the next attempt, measures
    the deadline anew; until then at least the deadline margin is left of it."""
    wait = seconds + 1
    if wait > settings.JOB_DEADLINE_MARGIN_SECONDS / 2:
        return False
    intervals = list(job.retry_intervals or [0])
    index = max(len(intervals) - (job.retries_left or 0), 0)  # RQ's get_retry_interval
    intervals[index] = max(intervals[index], wait)
    job.retry_intervals = intervals
    return True


def on_work_horse_killed(job: Job, retpid: int | None, ret_val: int | None) -> None:
    """The worker saw its horse die (SIGKILL, OOM, a hang past timeout + 60 s). RQ retries
    the job right after this if it has retries left; otherwise this is the last word."""
    operation_id = operation_id_of(job)
    if operation_id is None:
        return
    key_token = _key_token_of(job, operation_id)
    try:
        if key_token is not None:
            release_lock(job.connection, operation_id, key_token, holder_pid=retpid)
    except Exception:  # noqa: BLE001
        log.exception("operation %s: lock not released", operation_id)
    if (job.retries_left or 0) > 0:
        log.warning(
            "operation %s: work-horse %s died (%s), %s retries left",
            operation_id,
            retpid,
            ret_val,
            job.retries_left,
        )
        return
    _refund_now(
        operation_id,
        Failure("crashed", True),
        detail=f"work-horse died: {ret_val}",
        key_token=key_token,
    )


def _refund_now(
    operation_id: int, failure: Failure, *, detail: str, key_token: str | None = None
) -> None:
    """Refund from synchronous code (a callback), in an event loop of its own. Never raises:
    if the database is down the sweeper voids the operation at its deadline."""
    try:
        asyncio.run(
            refund_and_notify(
                runtime.settings(), operation_id, failure, detail=detail, key_token=key_token
            )
        )
    except StopRequested:
        raise  # SIGTERM in the worker (killed-horse path): RQ's warm shutdown must go on
    except Exception:  # noqa: BLE001
        log.exception("operation %s: refund failed, the sweeper will retry it", operation_id)
