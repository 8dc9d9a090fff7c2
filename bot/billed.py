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

Plans (issue 14): before the charge, the user's periods that are due are rolled over
(``billing.plans.roll_over``); a type the user's plans do not unlock is refused with 🔒 and
the plans that unlock it (``OperationLocked``: nothing written). A user who wants to confirm
charges (/settings) is asked first: the request is kept (:mod:`bot.confirm`) with the quote
shown, and :func:`confirm_charge` charges it when "Подтвердить" comes — only if the quote
read again under the user's lock is still the same promise.
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
from aiogram.exceptions import TelegramBadRequest
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, TelegramObject
from redis.asyncio import Redis
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from billing import accounts, ai_models, operations, wallet
from billing.ai_models import Use
from billing.errors import ChargeConflict, DuplicateRequest, InsufficientFunds, OperationLocked
from billing.models import Backend, Funding, Operation
from billing.operations import ChargeResult
from billing.prices import OperationType, format_rub, operation_type
from billing.settings import Settings
from bot import confirm, plan_notices
from bot.callbacks import ConfirmCharge
from bot.inputs import MediaInput, Note
from bot.keyboards import (
    back_to_menu,
    confirm_keyboard,
    insufficient_keyboard,
    queued_keyboard,
    show_plans_keyboard,
)
from jobqueue.queue import enqueue_operation, job_id_for
from texts import model_texts, wallet_texts
from texts.i18n import t

log = logging.getLogger(__name__)

FLAG = "billed"
CUT_SHORT_NOTICE_SECONDS = 5.0  # telling the user, on the way out of a cancelled request
# Pauses between the tries of a reversal that could not reach the database (a restart):
# about 15 s in all, then the sweeper's turn at the operation's deadline. As the workers'
# refunds (workers/callbacks.py REFUND_RETRY_PAUSES): a reversal is a conditional update,
# so a repeat reverses nothing twice.
REVERSAL_RETRY_PAUSES = (1.0, 2.0, 4.0, 8.0)
_sleep = asyncio.sleep  # the tests' seam


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
    close_keyboard: bool = False  # the input's reply keyboard goes with "queued"
    settled: bool = False  # queued, or already refunded: the middleware leaves it alone
    status: Message | None = None  # the "queued" message, once sent
    # Runs on a hosted model (its job only submits: the worker runs it in its own process,
    # without a fork; jobqueue.queue.enqueue_operation).
    hosted: bool = False

    @property
    def id(self) -> int:
        return self.charge.operation_id

    async def enqueue(self, message: Message, *, in_place: bool = False) -> bool:
        """Say "queued", record that message on the operation, then put the job on RQ.

        ``in_place``: ``message`` is the bot's own (the confirmation), edited into "queued"
        instead of a new message. The status message is recorded BEFORE the job is queued,
        so a fast worker always finds it. Redis unreachable: the charge is reversed at once
        and the user told to try later. Returns whether the job was queued.
        """
        lines = [
            t(f"bot-op-queued-{self.type.value}", self.lang),
            t("bot-op-paid", self.lang, **cost_args(self.charge, self.settings, self.lang)),
            *(t(key, self.lang, **dict(args)) for key, args in self.notes),
        ]
        text = "\n".join(lines)
        if in_place:
            edited = await message.edit_text(text, reply_markup=back_to_menu(self.lang))
            status = edited if isinstance(edited, Message) else message
        else:
            keyboard = queued_keyboard(self.lang, close=self.close_keyboard)
            status = await message.answer(text, reply_markup=keyboard)
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
                hosted=self.hosted,
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


def cost_args(charge: ChargeResult, settings: Settings, lang: str = "ru") -> dict[str, Any]:
    """How an operation was paid, for the "queued" text."""
    how = Funding(charge.funding).value
    return {
        "how": how,  # free | balance | subscription | package | none
        "price": format_rub(charge.price),
        "balance": format_rub(charge.balance_after),
        "free_left": charge.free_after,
        "free_total": settings.FREE_OPERATIONS_COUNT,
        "units": wallet_texts.ops(charge.units, lang),
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
    """The charge behind ``billed(...)``. Expects `settings`, `session`, `queue`, `redis`,
    `lang` and the handler's filter results `media_input` (and `op_type` for ``billed()``,
    `fsm_after` for the mode's data once the input is taken) in the data."""

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
            # What runs it and its price, as shown before the input: a mode turned off or
            # left without its model since then charges nothing.
            use = (await ai_models.catalogue(session)).use(op_name, settings)
            if not isinstance(use, Use):
                await session.commit()
                await event.answer(model_texts.unavailable_text(use, lang))
                return None
            if use.units > 0 and await wallet.wants_confirmation(
                session, settings, user_id=account.id
            ):
                await session.commit()
                await plan_notices.roll_over(session, settings, account.id, event.bot)
                await _ask(event, data, account.id, op_name, media, key)
                return None
            charge = await operations.charge(
                session,
                settings,
                user_id=account.id,
                op_type=op_name,
                request_key=key,
                chat_id=event.chat.id,
                input_ref=model_input(media, use, lang),
            )
            await session.commit()
        except InsufficientFunds as exc:
            await session.rollback()
            await event.answer(
                insufficient_text(exc.price, exc.balance, exc.free_granted, lang),
                reply_markup=insufficient_keyboard(lang),
            )
            return None
        except OperationLocked:
            # The 🔒 on the button was not seen (an old menu, a mode left open while a plan
            # ended): the charge refused it and wrote nothing.
            await session.rollback()
            await tell_locked(event, session, op_name, lang)
            return None
        except ChargeConflict:
            # Many charges of this user at once kept spending the source this one chose:
            # nothing written; the user sends it again.
            await session.rollback()
            await event.answer(t("bot-charge-busy", lang))
            return None
        except DuplicateRequest as exc:
            # Telegram delivered this update again: it was charged (and queued) the first
            # time; charge nothing and queue nothing now.
            await session.rollback()
            log.info("duplicate update %s (operation %s): ignored", key, exc.operation_id)
            return None

        if charge.rolled_over and event.bot is not None:  # renewed / ended on the way
            await plan_notices.tell(session, settings, event.bot, charge.rolled_over)
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
            close_keyboard=media.close_keyboard,
            hosted=use.backend != Backend.LOCAL,
        )
        data["operation"] = operation
        return await settle(operation, lambda: handler(event, data), event)


def model_input(media: MediaInput, use: Use, lang: str) -> dict[str, Any]:
    """The operation's input_ref: what the user sent, and the model that runs it as the
    user was shown (``model``: backend, model id, parameters — the job's ModelCall)."""
    return {**media.input_ref(lang), "model": use.as_input()}


def insufficient_text(price: int, balance: int, free_total: int, lang: str) -> str:
    return t(
        "bot-insufficient",
        lang,
        price=format_rub(price),
        balance=format_rub(balance),
        free_total=free_total,
    )


async def tell_locked(
    message: Message, session: AsyncSession, op_type: str, lang: str, *, edit: bool = False
) -> None:
    """🔒: which plans unlock the type, with a button to see them. Nothing is charged."""
    unlocking = await wallet.plans_unlocking(session, op_type)
    await session.rollback()
    text = wallet_texts.locked_text(op_type, unlocking, lang)
    if edit:
        await message.edit_text(text, reply_markup=show_plans_keyboard(lang))
    else:
        await message.answer(text, reply_markup=show_plans_keyboard(lang))


async def _ask(
    event: Message,
    data: dict[str, Any],
    user_id: int,
    op_type: str,
    media: MediaInput,
    key: str,
) -> None:
    """Keep the request and ask "Подтвердить / Отмена" with what the charge would take."""
    session: AsyncSession = data["session"]
    settings: Settings = data["settings"]
    lang: str = data["lang"]
    held = await wallet.wallet(session, settings, user_id=user_id)
    quote = wallet.quote_from(held, settings, op_type)
    await session.rollback()
    if quote.locked:
        await tell_locked(event, session, op_type, lang)
        return
    if not quote.covered:
        await event.answer(
            insufficient_text(quote.price, held.balance, held.free_granted, lang),
            reply_markup=insufficient_keyboard(lang),
        )
        return
    pending = confirm.Pending(
        token=confirm.new_token(),
        telegram_id=data["event_from_user"].id,
        op_type=op_type,
        request_key=key,
        chat_id=event.chat.id,
        lang=lang,
        quote_key=confirm.quote_key(quote.key()),
        file_ids=tuple(media.file_ids),
        text=media.text,
        notes=tuple(media.notes),
    )
    redis: Redis = data["redis"]
    if not await confirm.keep(redis, pending):
        log.info("duplicate update %s: already asked to confirm", key)
        return
    state: FSMContext | None = data.get("state")
    if state is not None and data.get("fsm_after"):
        await state.update_data(**data["fsm_after"])  # the input is the request's now
    await event.answer(
        wallet_texts.confirm_text(quote, lang), reply_markup=confirm_keyboard(lang, pending.token)
    )


async def settle(
    operation: BilledOperation, run: Callable[[], Awaitable[Any]], message: Message
) -> Any:
    """Run what queues a charged operation; reverse the charge if it never gets queued."""
    session = operation.session
    lang = operation.lang
    try:
        result = await run()
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
                        await _tell_failed(message, lang, operation.status)
        raise
    except Exception as exc:
        if operation.settled:
            raise
        # Handled here (refund + a message), so the dispatcher's error handler stays out.
        log.exception("operation %s: handler failed before queueing", operation.id)
        await reverse(session, operation.id, f"handler failed: {exc!r}")
        await _tell_failed(message, lang, operation.status)
        return None
    if not operation.settled:
        log.error("operation %s: handler returned without queueing; refunded", operation.id)
        await reverse(session, operation.id, "handler did not queue the job")
        await _tell_failed(message, lang, operation.status)
    return result


async def reverse(session: AsyncSession, operation_id: int, reason: str) -> bool:
    """:func:`refund`, tried again after each of :data:`REVERSAL_RETRY_PAUSES` while the
    database cannot be reached: the handler most often fails because the database went
    away, and it is back within seconds. Still down after the last pause: raises (the
    dispatcher apologises; the sweeper refunds at the operation's deadline)."""
    for pause in REVERSAL_RETRY_PAUSES:
        try:
            return await refund(session, operation_id, reason)
        except (DBAPIError, OSError) as exc:
            log.warning("operation %s: not reversed (%s), again in %s s", operation_id, exc, pause)
        await _sleep(pause)
    return await refund(session, operation_id, reason)


async def _already_charged(session: AsyncSession, key: str) -> bool:
    return (
        await session.scalar(select(Operation.id).where(Operation.request_key == key))
    ) is not None


async def _edit(message: Message | None, text: str, keyboard: Any = None) -> None:
    if message is None:
        return
    try:
        await message.edit_text(text, reply_markup=keyboard)
    except TelegramBadRequest as exc:  # pressed twice: "message is not modified"
        log.info("confirmation not edited: %s", exc)


async def confirm_charge(
    query: CallbackQuery,
    callback_data: ConfirmCharge,
    session: AsyncSession,
    settings: Settings,
    redis: Redis,
    queue: Queue,
    lang: str,
) -> None:
    """Подтвердить / Отмена of a kept request.

    Confirmed: under the user's lock, the request is charged only if it was not already
    (a double tap: the second finds the operation) and the quote read now is the one the
    user saw; then it is queued, the confirmation turned into the "queued" message. A late
    tap (the request expired or was canceled) or a changed quote charges nothing and says
    why; a changed quote asks again with the new one. Canceled: forgotten, nothing charged.
    """
    message = query.message if isinstance(query.message, Message) else None
    pending = await confirm.load(redis, query.from_user.id, callback_data.token)
    if pending is None or message is None:
        await query.answer(t("plans-confirm-expired", lang) if message is None else None)
        await _edit(message, t("plans-confirm-expired", lang))
        return
    lang = pending.lang
    if await _already_charged(session, pending.request_key):
        await session.rollback()
        await query.answer(t("plans-confirm-done", lang))
        return
    if not callback_data.ok:
        await session.rollback()
        await confirm.drop(redis, pending)
        await query.answer()
        await _edit(message, t("plans-confirm-canceled", lang))
        return

    account, _ = await accounts.get_or_create_user(
        session,
        telegram_id=query.from_user.id,
        free_operations=settings.FREE_OPERATIONS_COUNT,
        username=query.from_user.username,
        language=lang,
    )
    await session.commit()
    await plan_notices.roll_over(session, settings, account.id, query.bot)
    media = MediaInput(file_ids=pending.file_ids, text=pending.text, notes=pending.notes)
    # The user's counters stay as read until the charge commits: the quote read under the
    # lock is what the charge in this same transaction does.
    await wallet.lock_for_quote(session, user_id=account.id)
    if await _already_charged(session, pending.request_key):  # the other tap won the lock
        await session.rollback()
        await query.answer(t("plans-confirm-done", lang))
        return
    held = await wallet.wallet(session, settings, user_id=account.id)
    quote = wallet.quote_from(held, settings, pending.op_type)
    use = (await ai_models.catalogue(session)).use(pending.op_type, settings)
    if not isinstance(use, Use):  # turned off (or its key removed) since it was asked
        await session.rollback()
        await confirm.drop(redis, pending)
        await query.answer()
        await _edit(message, model_texts.unavailable_text(use, lang))
        return
    charge: ChargeResult | None = None
    if confirm.quote_key(quote.key()) == pending.quote_key:
        try:
            charge = await operations.charge(
                session,
                settings,
                user_id=account.id,
                op_type=pending.op_type,
                request_key=pending.request_key,
                chat_id=pending.chat_id,
                input_ref=model_input(media, use, lang),
            )
        except DuplicateRequest:
            await session.rollback()
            await query.answer(t("plans-confirm-done", lang))
            return
        except (InsufficientFunds, OperationLocked, ChargeConflict) as exc:
            log.warning("confirmed charge refused although quoted: %r", exc)
            charge = None
        if charge is not None and not _as_quoted(charge, quote):
            log.warning("charge %s differs from its quote %s", charge, quote.key())
            charge = None
    if charge is None:
        await session.rollback()
        await query.answer()
        await _requote(message, session, redis, pending, held, quote, lang)
        return
    await session.commit()
    await query.answer()
    operation = BilledOperation(
        charge=charge,
        type=OperationType(pending.op_type),
        request_key=pending.request_key,
        session=session,
        settings=settings,
        queue=queue,
        lang=lang,
        file_ids=tuple(media.file_ids),
        notes=media.notes,
        hosted=use.backend != Backend.LOCAL,
    )
    await settle(operation, lambda: operation.enqueue(message, in_place=True), message)


def _as_quoted(charge: ChargeResult, quote: wallet.Quote) -> bool:
    expected_price = quote.takes if quote.source is Funding.BALANCE else 0
    return (
        charge.funding == quote.source
        and charge.holding_id == quote.holding_id
        and charge.price == expected_price
    )


async def _requote(
    message: Message | None,
    session: AsyncSession,
    redis: Redis,
    pending: confirm.Pending,
    held: wallet.Wallet,
    quote: wallet.Quote,
    lang: str,
) -> None:
    """The quote no longer holds: nothing charged; say so, and ask again with the new one
    (or say why nothing can pay for it now)."""
    changed = t("plans-confirm-changed", lang)
    if quote.covered:
        await confirm.requote(redis, pending, quote.key())
        await _edit(
            message,
            changed + "\n\n" + wallet_texts.confirm_text(quote, lang),
            confirm_keyboard(lang, pending.token),
        )
        return
    await confirm.drop(redis, pending)
    if quote.locked:
        unlocking = await wallet.plans_unlocking(session, pending.op_type)
        await session.rollback()
        text = wallet_texts.locked_text(pending.op_type, unlocking, lang)
        await _edit(message, changed + "\n\n" + text, show_plans_keyboard(lang))
        return
    text = insufficient_text(quote.price, held.balance, held.free_granted, lang)
    await _edit(message, changed + "\n\n" + text, insufficient_keyboard(lang))


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
