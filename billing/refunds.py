"""Refunds an operator makes: a YooKassa payment returned to the card through YooKassa's
refunds API (``python -m billing refund-payment``, the admins' /refund).

1. The payment: ours, through YooKassa, paid. One whose notification never came is first
   credited the one way money comes in (:func:`billing.payments.reconcile_payment`), so the
   debit has a credit to undo.
2. The request (``payment_refunds``), committed with its own idempotence key BEFORE the API
   call. Run again, the command finds it and sends the same key, so YooKassa makes one
   refund however often it is asked: an unfinished request of the payment is retried (there
   is at most one per payment, a unique index); a succeeded one of the same amount is the
   answer ("already refunded"), unless ``again`` asks for another refund of that amount.
3. The API call: POST /refunds with the stored key (GET /refunds/<id> once YooKassa gave
   the refund's id). No answer: the request stays as it was, for the next run. A refusal (a
   4xx): the request is marked rejected — no refund was made — with YooKassa's reason.
4. A succeeded refund is debited through the one path that records refunds
   (:func:`billing.payments.settle_refund`, the same as for YooKassa's refund.succeeded
   notification, under the same once-only key): the balance goes down by what was refunded,
   below zero when the money was spent (the debt on record), and the user's "refunded"
   message is recorded in the same transaction. Whichever of the two comes first debits;
   the other finds it done.

Amounts are kopecks. Raises :class:`RefundRefused` (nothing changed, or a request marked
rejected) and ``GatewayUnavailable`` (YooKassa did not answer: run the same command again).
"""

from __future__ import annotations

import enum
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing import notices
from billing.bounds import parse_id
from billing.errors import BillingError, InvalidAmount
from billing.models import (
    UNFINISHED_REFUNDS,
    Payment,
    PaymentProvider,
    PaymentRefund,
    RefundStatus,
    User,
)
from billing.payments import Outcome, RefundOutcome, reconcile_payment, settle_refund
from billing.yookassa import GatewayRejected, ProviderRefund, YooKassaGateway

log = logging.getLogger(__name__)

_YOOKASSA_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class RefundRefused(BillingError):
    """Not refunded; ``code`` names why (the operator's message), ``params`` its details.

    unknown_payment, not_paid, not_yookassa (paid, not through YooKassa), stars (paid in
    Telegram Stars: the bot's /refund returns it), nothing_left,
    too_much, unfinished (another amount is being refunded), rejected (YooKassa refused),
    mismatch (YooKassa's answer is not ours)."""

    def __init__(self, code: str, **params: object) -> None:
        super().__init__(f"{code}: {params}")
        self.code = code
        self.params = params


class RefundDone(enum.StrEnum):
    REFUNDED = "refunded"  # returned to the card, and debited from the balance
    ALREADY = "already_refunded"  # this refund was made before: nothing new
    PENDING = "pending"  # YooKassa has it and has not finished: debited when it succeeds
    CANCELED = "canceled"  # YooKassa canceled it: nothing was returned


@dataclass(frozen=True)
class OperatorRefund:
    outcome: RefundDone
    request_id: int
    payment_id: int
    amount: int  # kopecks asked for
    yookassa_refund_id: str | None
    user_id: int
    telegram_id: int
    language: str | None
    balance_after: int
    # The user's messages this call recorded, in order ("credited" when it credited a payment
    # whose notification never came, then "refunded"): the caller may send them at once.
    notice_keys: tuple[str, ...] = ()
    detail: str = ""


def payment_ref(value: str) -> int | str | None:
    """What an operator typed: our payment number (digits) or a YooKassa payment id."""
    value = value.strip()
    if value.isascii() and value.isdigit():
        return parse_id(value)
    return value if _YOOKASSA_ID.fullmatch(value) else None


_LOAD = select(
    Payment.id,
    Payment.user_id,
    Payment.yookassa_payment_id,
    Payment.amount,
    Payment.currency,
    Payment.refunded_amount,
    Payment.credited_at,
    Payment.status,
    Payment.provider,
    User.telegram_id,
    User.language,
    User.email,
    User.balance,
).join(User, User.id == Payment.user_id)


async def _load(sessionmaker: async_sessionmaker[AsyncSession], ref: int | str) -> Row[Any] | None:
    if isinstance(ref, int):
        query = _LOAD.where(Payment.id == ref)
    else:
        query = _LOAD.where(Payment.yookassa_payment_id == ref)
    async with sessionmaker() as session:
        return (await session.execute(query)).one_or_none()


@dataclass(frozen=True)
class _Request:
    id: int
    amount: int
    key: str
    refund_id: str | None
    receipt_email: str | None


def _request(row: PaymentRefund) -> _Request:
    return _Request(
        row.id, row.amount, row.idempotence_key, row.yookassa_refund_id, row.receipt_email
    )


def _result(
    outcome: RefundDone,
    row: Row[Any],
    request: _Request,
    *,
    refund_id: str | None,
    balance: int,
    keys: list[str],
    detail: str = "",
) -> OperatorRefund:
    return OperatorRefund(
        outcome=outcome,
        request_id=request.id,
        payment_id=row.id,
        amount=request.amount,
        yookassa_refund_id=refund_id,
        user_id=row.user_id,
        telegram_id=row.telegram_id,
        language=row.language,
        balance_after=balance,
        notice_keys=tuple(keys),
        detail=detail,
    )


async def _take_request(
    sessionmaker: async_sessionmaker[AsyncSession],
    row: Row[Any],
    amount: int | None,
    *,
    requested_by: str,
    again: bool,
) -> tuple[_Request, bool]:
    """(the request to send, whether it was done before); RefundRefused when none fits."""
    for _ in range(3):  # a concurrent run may insert the payment's unfinished request first
        async with sessionmaker() as session:
            unfinished = await session.scalar(
                select(PaymentRefund).where(
                    PaymentRefund.payment_id == row.id,
                    PaymentRefund.status.in_(UNFINISHED_REFUNDS),
                )
            )
            if unfinished is not None:
                if amount is not None and amount != unfinished.amount:
                    raise RefundRefused("unfinished", payment=row.id, amount=unfinished.amount)
                return _request(unfinished), False
            left = row.amount - row.refunded_amount
            if not again:
                done = select(PaymentRefund).where(
                    PaymentRefund.payment_id == row.id,
                    PaymentRefund.status == RefundStatus.SUCCEEDED.value,
                )
                if amount is not None:
                    done = done.where(PaymentRefund.amount == amount)
                elif left > 0:
                    done = None  # "refund the rest": a new request
                if done is not None:
                    before = await session.scalar(done.order_by(PaymentRefund.id.desc()).limit(1))
                    if before is not None:
                        return _request(before), True
            wanted = left if amount is None else amount
            if left <= 0:
                raise RefundRefused("nothing_left", payment=row.id, amount=row.amount)
            if wanted > left:
                raise RefundRefused("too_much", payment=row.id, amount=wanted, left=left)
            request = PaymentRefund(
                payment_id=row.id,
                amount=wanted,
                idempotence_key=uuid.uuid4().hex,
                status=RefundStatus.NEW.value,
                requested_by=requested_by[:64],
                receipt_email=row.email,
            )
            session.add(request)
            try:
                await session.commit()
            except sa_exc.IntegrityError:
                await session.rollback()
                continue  # another run's request is the unfinished one now: take it
            log.info(
                "payment %s: refund request %s of %d by %s (key stored before the call)",
                row.id,
                request.id,
                wanted,
                requested_by,
            )
            return _request(request), False
    raise RefundRefused("unfinished", payment=row.id, amount=amount)


async def _mark(
    sessionmaker: async_sessionmaker[AsyncSession],
    request: _Request,
    status: RefundStatus,
    *,
    refund_id: str | None = None,
    error: str | None = None,
) -> None:
    values: dict[str, object] = {"status": status.value}
    if refund_id is not None:
        values["yookassa_refund_id"] = refund_id
    if error is not None:
        values["error"] = error[:200]
    async with sessionmaker() as session:
        await session.execute(
            update(PaymentRefund)
            .where(
                PaymentRefund.id == request.id,
                PaymentRefund.status.in_(UNFINISHED_REFUNDS),
            )
            .values(**values)
        )
        await session.commit()


async def _balance(sessionmaker: async_sessionmaker[AsyncSession], user_id: int) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(User.balance).where(User.id == user_id)))


async def refund_payment(
    sessionmaker: async_sessionmaker[AsyncSession],
    gateway: YooKassaGateway,
    *,
    payment: int | str,
    amount: int | None = None,
    requested_by: str,
    again: bool = False,
) -> OperatorRefund:
    """Refund ``amount`` kopecks (None: what is left) of a payment (our number or its
    YooKassa id) to the card, once. See the module's docstring."""
    if amount is not None and (
        not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0
    ):
        raise InvalidAmount(amount)
    row = await _load(sessionmaker, payment)
    if row is None:
        raise RefundRefused("unknown_payment", payment=str(payment)[:64])
    keys: list[str] = []
    if row.provider == PaymentProvider.STARS:
        raise RefundRefused("stars", payment=row.id)  # the bot's /refund: refundStarPayment
    if row.yookassa_payment_id is None:
        if row.credited_at is not None:  # paid another way (not through YooKassa)
            raise RefundRefused("not_yookassa", payment=row.id)
        raise RefundRefused("not_paid", payment=row.id, status=row.status)
    if row.credited_at is None:
        # Paid, perhaps, and its notification lost: the API says (and credits it once).
        credit = await reconcile_payment(sessionmaker, gateway, payment_id=row.id)
        if credit.outcome not in (Outcome.CREDITED, Outcome.ALREADY_CREDITED):
            raise RefundRefused("not_paid", payment=row.id, status=credit.outcome.value)
        if credit.outcome is Outcome.CREDITED:
            keys.append(notices.credited_key(row.id))
        row = await _load(sessionmaker, row.id)
        assert row is not None
    request, done_before = await _take_request(
        sessionmaker, row, amount, requested_by=requested_by, again=again
    )
    if done_before:
        return _result(
            RefundDone.ALREADY,
            row,
            request,
            refund_id=request.refund_id,
            balance=await _balance(sessionmaker, row.user_id),
            keys=keys,
        )

    refund = await _ask(gateway, row, request, sessionmaker)
    if (refund.payment_id, refund.amount, refund.currency) != (
        row.yookassa_payment_id,
        request.amount,
        row.currency,
    ):
        log.error(
            "refund request %s: YooKassa answered with refund %s of %s, %d %s: not ours",
            request.id,
            refund.id,
            refund.payment_id,
            refund.amount,
            refund.currency,
        )
        raise RefundRefused("mismatch", payment=row.id, refund=refund.id)
    if request.refund_id is None:
        await _mark(sessionmaker, request, RefundStatus.PENDING, refund_id=refund.id)

    if refund.status == "canceled":
        details = refund.raw.get("cancellation_details") or {}
        reason = str(details.get("reason") or "canceled")
        await _mark(sessionmaker, request, RefundStatus.CANCELED, error=reason)
        log.warning(
            "refund request %s: YooKassa canceled refund %s: %s", request.id, refund.id, reason
        )
        return _result(
            RefundDone.CANCELED,
            row,
            request,
            refund_id=refund.id,
            balance=await _balance(sessionmaker, row.user_id),
            keys=keys,
            detail=reason,
        )
    if refund.status != "succeeded":
        log.info(
            "refund request %s: refund %s is %s at YooKassa", request.id, refund.id, refund.status
        )
        return _result(
            RefundDone.PENDING,
            row,
            request,
            refund_id=refund.id,
            balance=await _balance(sessionmaker, row.user_id),
            keys=keys,
            detail=refund.status,
        )
    settled = await settle_refund(sessionmaker, gateway, refund)
    if settled.outcome not in (RefundOutcome.RECORDED, RefundOutcome.ALREADY_RECORDED):
        # The request stays pending with the refund's id: a run after the fix ends it.
        log.error(
            "refund request %s: refund %s not debited: %s %s",
            request.id,
            refund.id,
            settled.outcome.value,
            settled.detail,
        )
        raise RefundRefused("mismatch", payment=row.id, refund=refund.id)
    if settled.outcome is RefundOutcome.RECORDED:
        keys.append(notices.refunded_key(refund.id))
    log.info(
        "refund request %s: payment %s refunded %d to the card (refund %s, by %s)",
        request.id,
        row.id,
        request.amount,
        refund.id,
        requested_by,
    )
    return _result(
        RefundDone.REFUNDED,
        row,
        request,
        refund_id=refund.id,
        balance=await _balance(sessionmaker, row.user_id),
        keys=keys,
    )


async def _ask(
    gateway: YooKassaGateway,
    row: Row[Any],
    request: _Request,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> ProviderRefund:
    """The refund at YooKassa: made (or found again) with the request's key, or read by its
    id once YooKassa gave one. ``GatewayUnavailable`` goes up: the request stays as it is."""
    if request.refund_id is not None:
        try:
            return await gateway.fetch_refund(request.refund_id)
        except GatewayRejected as exc:
            raise RefundRefused("rejected", payment=row.id, error=str(exc)[:200]) from None
    try:
        return await gateway.create_refund(
            payment_id=row.yookassa_payment_id,
            amount=request.amount,
            currency=row.currency,
            idempotence_key=request.key,
            # Built from stored values only: a retry must send the very same body.
            description=f"Media Lab: возврат по заказу {row.id}",
            receipt_email=request.receipt_email,
        )
    except GatewayRejected as exc:
        # YooKassa refused to make it (it answers a refused key the same way again): no
        # refund exists, the request is over.
        await _mark(sessionmaker, request, RefundStatus.REJECTED, error=str(exc))
        log.warning(
            "refund request %s of payment %s: YooKassa refused: %s", request.id, row.id, exc
        )
        raise RefundRefused("rejected", payment=row.id, error=str(exc)[:200]) from None
