"""``billed("<operation>")``: charge before a handler runs, refund if it never queues.

A handler flag, read by an inner middleware (aiogram's idiom for a "decorator" that keeps
argument injection; flags reach inner middlewares only)::

    @billed()  # the type the filter found (`op_type`), or billed("upscale") for one type
    async def queue_operation(message: Message, operation: BilledOperation) -> None:
        await operation.enqueue(message)

    router.message.register(queue_operation, ReadyInput())

``BilledMiddleware`` (registered with ``router.message.middleware(...)``), in ONE
transaction before the handler: finds or creates the user and charges one operation keyed
by the Telegram update ("chat_id:message_id"), then commits and hands the handler an
``operation``. Not enough money: the handler does not run, the user sees the price, the
balance, that the free operations are used up and a top-up button; nothing is written.
The same update delivered again: nothing is charged, the handler does not run. A handler
that raises (or returns) before its job is queued gets the charge reversed in the same
request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import BaseMiddleware, flags
from aiogram.dispatcher.flags import FlagDecorator, get_flag
from aiogram.types import Message, TelegramObject
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy.ext.asyncio import AsyncSession

from billing import accounts, operations
from billing.errors import DuplicateRequest, InsufficientFunds
from billing.models import Funding
from billing.operations import ChargeResult
from billing.prices import OperationType, format_rub, operation_type
from billing.settings import Settings
from bot.inputs import MediaInput, Note
from bot.keyboards import insufficient_keyboard, queued_keyboard
from jobqueue.queue import enqueue_operation, job_id_for
from texts.i18n import t

log = logging.getLogger(__name__)

FLAG = "billed"
CUT_SHORT_NOTICE_SECONDS = 5.0  # telling the user, on the way out of a cancelled request


BY_INPUT = "*"  # the flag's value for "the type the filter found" (the data's `op_type`)


def billed(operation: OperationType | str | None = None) -> FlagDecorator:
    """Mark a handler as a paid (or free but recorded) operation: of this type, or (None)
    of the type its filter put in the data as `op_type` (one handler for every mode)."""
    if operation is None:
        return flags.billed(BY_INPUT)
    return flags.billed(operation_type(operation).value)


def request_key(message: Message) -> str:
    """The Telegram update that asks for an operation: a re-delivery has the same key."""
    return f"{message.chat.id}:{message.message_id}"


@dataclass
class BilledOperation:
    """The charged operation, handed to a billed handler as `operation`."""

    charge: ChargeResult
    type: OperationType
    request_key: str
    session: AsyncSession
    settings: Settings
    queue: Queue
    lang: str
    file_ids: tuple[str, ...] = ()  # the inputs, for the worker to fetch while it claims
    notes: tuple[Note, ...] = ()  # what of the input was not used, said with "queued"
    settled: bool = False  # queued, or already refunded: the middleware leaves it alone
    status: Message | None = None  # the "queued" message, once sent

    @property
    def id(self) -> int:
        return self.charge.operation_id

    async def enqueue(self, message: Message) -> bool:
        """Say "queued", record that message on the operation, then put the job on RQ.

        The status message is recorded BEFORE the job is queued, so a fast worker always
        finds it. Redis unreachable: the charge is reversed at once and the user told to
        try later. Returns whether the job was queued.
        """
        lines = [
            t(f"bot-op-queued-{self.type.value}", self.lang),
            t("bot-op-paid", self.lang, **cost_args(self.charge, self.settings)),
            *(t(key, self.lang, **dict(args)) for key, args in self.notes),
        ]
        status = await message.answer("\n".join(lines), reply_markup=queued_keyboard(self.lang))
        self.status = status
        await operations.set_operation_job(
            self.session,
            operation_id=self.id,
            job_id=job_id_for(self.id, self.charge.key_token),
            status_message_id=status.message_id,
        )
        await self.session.commit()
        try:
            # RQ's client is synchronous: keep the event loop free.
            await asyncio.to_thread(
                enqueue_operation,
                self.queue,
                self.settings,
                self.id,
                self.charge.key_token,
                file_ids=self.file_ids,
            )
        except (RedisError, OSError) as exc:
            log.error("operation %s: enqueue failed, refunding: %s", self.id, exc)
            self.settled = True
            if not await refund(self.session, self.id, f"enqueue failed: {exc!r}"):
                # The command reached Redis after all (only its reply was lost) and a worker
                # already claimed the job: it delivers or refunds; nothing to reverse here.
                log.warning("operation %s: already claimed by a worker, not reversed", self.id)
                return True
            await status.edit_text(t("bot-op-queue-down", self.lang))
            return False
        self.settled = True
        return True


def cost_args(charge: ChargeResult, settings: Settings) -> dict[str, Any]:
    """How an operation was paid, for the "queued" text."""
    how = Funding(charge.funding).value
    return {
        "how": how,  # free | balance | subscription | package | none
        "price": format_rub(charge.price),
        "balance": format_rub(charge.balance_after),
        "free_left": charge.free_after,
        "free_total": settings.FREE_OPERATIONS_COUNT,
        "units": charge.units,
        "units_left": charge.units_after if charge.units_after is not None else 0,
    }


async def refund(session: AsyncSession, operation_id: int, reason: str) -> bool:
    """Reverse a charge in this request (once: refund_operation is conditional).

    Only a still-queued operation is reversed: one a worker has claimed is the worker's to
    deliver or refund. Returns whether this call reversed it.
    """
    await session.rollback()
    result = await operations.refund_operation(
        session, operation_id=operation_id, error=reason, only_if_queued=True
    )
    await session.commit()
    return result is not None


Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class BilledMiddleware(BaseMiddleware):
    """The charge behind ``billed(...)``. Expects `settings`, `session`, `queue`, `lang`
    and the handler's filter results `media_input` (and `op_type` for ``billed()``) in the
    data."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        op_name = get_flag(data, FLAG)
        if op_name is None or not isinstance(event, Message):
            return await handler(event, data)
        if op_name == BY_INPUT:
            op_name = data["op_type"]
        settings: Settings = data["settings"]
        session: AsyncSession = data["session"]
        lang: str = data["lang"]
        media: MediaInput = data.get("media_input") or MediaInput()
        user = data["event_from_user"]
        key = request_key(event)
        try:
            account, _ = await accounts.get_or_create_user(
                session,
                telegram_id=user.id,
                free_operations=settings.FREE_OPERATIONS_COUNT,
                username=user.username,
                language=lang,
            )
            charge = await operations.charge(
                session,
                settings,
                user_id=account.id,
                op_type=op_name,
                request_key=key,
                chat_id=event.chat.id,
                input_ref=media.input_ref(lang),
            )
            await session.commit()
        except InsufficientFunds as exc:
            await session.rollback()
            await event.answer(
                t(
                    "bot-insufficient",
                    lang,
                    price=format_rub(exc.price),
                    balance=format_rub(exc.balance),
                    free_total=exc.free_granted,
                ),
                reply_markup=insufficient_keyboard(lang),
            )
            return None
        except DuplicateRequest as exc:
            # Telegram delivered this update again: it was charged (and queued) the first
            # time; charge nothing and queue nothing now.
            await session.rollback()
            log.info("duplicate update %s (operation %s): ignored", key, exc.operation_id)
            return None

        operation = BilledOperation(
            charge=charge,
            type=OperationType(op_name),
            request_key=key,
            session=session,
            settings=settings,
            queue=data["queue"],
            lang=lang,
            file_ids=tuple(media.file_ids),
            notes=media.notes,
        )
        data["operation"] = operation
        try:
            result = await handler(event, data)
        except asyncio.CancelledError:
            # Cut short (a restart in webhook mode): Telegram delivers the update again, but
            # a re-delivery charges nothing and queues nothing, so a charge left unqueued is
            # reversed now (else the sweeper voids it at its deadline).
            if not operation.settled:
                log.warning("operation %s: handling cut short before queueing", operation.id)
                try:
                    reversed_now = await refund(session, operation.id, "handling cut short")
                except Exception:  # noqa: BLE001 - the sweeper voids it at its deadline
                    log.exception("operation %s: not reversed", operation.id)
                    reversed_now = False
                if reversed_now:  # the re-delivered update will be silent: say it now
                    with contextlib.suppress(Exception):
                        async with asyncio.timeout(CUT_SHORT_NOTICE_SECONDS):
                            await _tell_failed(event, lang, operation.status)
            raise
        except Exception as exc:
            if operation.settled:
                raise
            # Handled here (refund + a message), so the dispatcher's error handler stays out.
            log.exception("operation %s: handler failed before queueing", operation.id)
            await refund(session, operation.id, f"handler failed: {exc!r}")
            await _tell_failed(event, lang)
            return None
        if not operation.settled:
            log.error("operation %s: handler returned without queueing; refunded", operation.id)
            await refund(session, operation.id, "handler did not queue the job")
            await _tell_failed(event, lang)
        return result


async def _tell_failed(message: Message, lang: str, status: Message | None = None) -> None:
    """The charge was reversed: in the "queued" message if there is one, else a new one."""
    text = t("bot-op-failed-before-queue", lang)
    try:
        if status is not None:
            await status.edit_text(text)
        else:
            await message.answer(text)
    except Exception as exc:  # noqa: BLE001 - the refund is what matters
        log.warning("could not tell the user about the refund: %s", exc)
