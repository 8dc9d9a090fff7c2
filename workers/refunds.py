"""Voiding a hold that will not be posted, and telling the user — once.

Every failure path ends here: the job's refused input (:mod:`workers.run`), RQ's failure
callback and the killed work-horse (:mod:`workers.callbacks`), the deadline sweeper
(:mod:`workers.sweeper`). ``billing.operations.refund_operation`` is conditional, so only the
caller that voided the hold sends the notice. An operation whose result already reached the
chat (a "delivered" marker in Redis, or ``delivered_at`` on its row) is posted instead.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from sqlalchemy.ext.asyncio import async_sessionmaker

from billing import operations as billing_operations
from billing import redaction
from billing.errors import OperationDelivered, OperationNotFound, OperationNotRefundable
from billing.models import OperationStatus
from billing.settings import Settings
from jobqueue import delivered
from workers import delivery, messages, runtime
from workers.claimed import load
from workers.failures import Failure

log = logging.getLogger(__name__)

VOIDED = (OperationStatus.REFUNDED.value, OperationStatus.FAILED.value)


async def refund_and_notify(
    settings: Settings,
    operation_id: int,
    failure: Failure,
    *,
    detail: str = "",
    key_token: str | None = None,
) -> billing_operations.RefundResult | None:
    """:func:`void_and_notify` with a sessionmaker and a Bot of its own."""
    async with runtime.resources(settings) as (sessionmaker, bot):
        return await void_and_notify(
            sessionmaker,
            bot,
            operation_id,
            failure,
            detail=detail,
            redis_url=settings.REDIS_URL,
            key_token=key_token,
        )


async def post_if_delivered(
    sessionmaker: async_sessionmaker, redis_url: str | None, operation_id: int, key_token: str
) -> bool:
    """Post the hold of an operation whose result already reached the chat. True if so."""
    ref = await asyncio.to_thread(delivered.lookup, redis_url, operation_id, key_token)
    if ref is None:
        return False
    await post_delivered(sessionmaker, operation_id, key_token, ref)
    return True


async def post_delivered(
    sessionmaker: async_sessionmaker, operation_id: int, key_token: str, ref: dict[str, Any]
) -> None:
    """Post the hold of an operation whose result ``ref`` already reached the chat."""
    async with sessionmaker() as session:
        if (
            await billing_operations.operation_key_token(session, operation_id=operation_id)
            != key_token
        ):
            # The marker is of another operation with this id (a database that started
            # again): posting it would charge for a result that never came.
            log.error(
                "operation %s: a delivered marker of another key token; not posted",
                operation_id,
            )
            return
        posted = await billing_operations.complete_operation(
            session, operation_id=operation_id, result_ref=ref or None
        )
        status = (
            None
            if posted
            else await billing_operations.record_delivery(session, operation_id=operation_id)
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
) -> billing_operations.RefundResult | None:
    """Void the operation's hold and tell the user, once: only the caller whose conditional
    update voided it sends the notice. None when it already had an outcome (or, for the
    sweeper's ``only_if_overdue_at``, when a job claimed it meanwhile). ``key_token``, a
    failed job's: when the row has another, the job was of another database and its
    failure is not this operation's (nothing is voided)."""
    async with sessionmaker() as session:
        row_token = await billing_operations.operation_key_token(
            session, operation_id=operation_id
        )
    if key_token is not None and row_token is not None and row_token != key_token:
        log.warning(
            "operation %s: the failed job was queued for another operation of this id "
            "(another key token): not voided",
            operation_id,
        )
        return None
    if row_token is not None and await post_if_delivered(
        sessionmaker, redis_url, operation_id, row_token
    ):
        return None
    async with sessionmaker() as session:
        try:
            refund = await billing_operations.refund_operation(
                session,
                operation_id=operation_id,
                # The column is kept for years: no secret in it (an exception may quote one).
                error=redaction.redact(f"{failure.reason}: {detail}")
                if detail
                else failure.reason,
                only_if_overdue_at=only_if_overdue_at,
            )
        except OperationDelivered:
            # The row says Telegram accepted the result though Redis has no marker (lost):
            # posted, as the marker would have made it.
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
            await post_delivered(sessionmaker, operation_id, row_token, {})
            return None
        if refund is None:
            await session.rollback()
            log.info("operation %s was already voided", operation_id)
            return None
        op = await load(session, operation_id)
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
        await tell_refund(bot, op.chat_id, op.status_message_id, notice)
    except delivery.COSMETIC_ERRORS as exc:
        log.error("operation %s: refund notice not delivered: %s", op.id, exc)
    return refund


async def tell_refund(bot: Bot, chat_id: int, status_message_id: int | None, notice: str) -> None:
    """The refund notice, as the operation's "queued" message itself (``editMessageText``):
    a failed operation costs what a delivered one does — "queued", "processing", and this
    edit, where it used to send the notice and delete "queued" (Telegram counts every
    message sent or edited). The status message gone (deleted by the user), or no longer a
    text (a result that reached it after all): a message of its own. Only the caller whose
    conditional update voided the hold gets here, so the notice goes out once."""
    if status_message_id is not None:
        try:
            await delivery.call(
                lambda: bot.edit_message_text(
                    text=notice, chat_id=chat_id, message_id=status_message_id
                ),
                what="refund notice",
            )
            return
        except TelegramBadRequest as exc:
            if "message is not modified" in str(exc):
                return  # a retry after a lost answer: the notice is already there
            log.info("chat %s: status message not edited: %s", chat_id, exc)
    await delivery.call(lambda: bot.send_message(chat_id, notice), what="refund notice")
