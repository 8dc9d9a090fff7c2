"""Telegram Stars top-ups: the pending purchase an invoice names, the pre-checkout check,
and the credit of a ``successful_payment`` — through the same once-only credit as YooKassa
(:func:`billing.payments.credit_payment`: the row's conditional status change, the ledger
entry "topup:<row id>", the "credited" message).

A Stars payment is a ``payments`` row with ``provider = 'stars'``, ``currency = 'XTR'``,
``stars`` the invoice's price in ⭐ and ``amount`` what it credits in kopecks (fixed when the
invoice is made: the rate may change, the promise does not). The invoice's payload names the
row and its random key (so the payload of a database restored or recreated since names no
row of the same id). A plan's payment (:func:`start_plan_purchase`) is the same row naming
the plan (``plan_id``): once credited, the plan is bought from the balance in the credit's
transaction, through the same path as a YooKassa plan payment
(:func:`billing.payments.credit_and_buy`). One charge credits one row, keyed by Telegram's
``telegram_payment_charge_id`` (unique): the same update delivered twice credits nothing
more, and an old invoice paid again (a new charge id for a row already credited) gets a row
of its own and is credited too — money Telegram took is never lost.

The functions never commit a caller's session; those that take a sessionmaker own their
transactions.
"""

from __future__ import annotations

import enum
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing import accounts, notices, plans
from billing.bounds import parse_id
from billing.errors import BillingError, InvalidAmount
from billing.models import Payment, PaymentProvider, PaymentStatus, Plan, User
from billing.payments import credit_and_buy, credit_payment, record_payment_refund
from billing.settings import MAX_STARS_PER_INVOICE, Settings

log = logging.getLogger(__name__)

CURRENCY = "XTR"  # Telegram Stars
PAYLOAD_PREFIX = "stars"


class StarsRefused(enum.StrEnum):
    """Why a pre-checkout is refused (each has a text the user sees)."""

    UNKNOWN = "unknown"  # not a payload of ours, or altered (its key does not match)
    NOT_YOURS = "not_yours"  # another user's purchase
    STALE = "stale"  # already paid, or no longer open
    PRICE = "price"  # the price or currency is not the purchase's
    PLAN = "plan"  # the plan it buys is no longer for sale (archived meanwhile)


@dataclass(frozen=True)
class StarsInvoice:
    payment_id: int
    payload: str
    stars: int
    amount: int  # kopecks it credits
    plan_id: int | None = None  # the plan it buys once credited


class StarsOutcome(enum.StrEnum):
    CREDITED = "credited"
    ALREADY_CREDITED = "already_credited"


@dataclass(frozen=True)
class StarsCredit:
    outcome: StarsOutcome
    payment_id: int
    amount: int
    stars: int
    balance_after: int
    telegram_id: int
    language: str | None
    repeat: bool = False  # an old invoice paid again: credited on a row of its own
    plan: plans.PlanPaymentNote | None = None  # a plan's payment: what became of the plan


def payload_for(payment_id: int, key: str) -> str:
    return f"{PAYLOAD_PREFIX}:{payment_id}:{key}"


def parse_payload(payload: str) -> tuple[int, str] | None:
    """``stars:<row id>:<row key>`` → (id, key); None for anything else."""
    parts = payload.split(":")
    if len(parts) != 3 or parts[0] != PAYLOAD_PREFIX:
        return None
    row_id = parse_id(parts[1])
    if row_id is None or not parts[2]:
        return None
    return row_id, parts[2]


async def start_purchase(
    session: AsyncSession,
    settings: Settings,
    *,
    user_id: int,
    stars: int,
    description: str | None = None,
) -> StarsInvoice:
    """The pending row an invoice of ``stars`` ⭐ names (flushed; the caller commits before
    the invoice is sent). Only the packs of STARS_PACKS are sold."""
    if stars not in settings.STARS_PACKS:
        raise BillingError(f"{stars} ⭐ is not one of STARS_PACKS")
    return await _new_row(session, settings, user_id=user_id, stars=stars, description=description)


def plan_stars(settings: Settings, price: int) -> int | None:
    """A plan's price in ⭐ (rounded up: :meth:`Settings.stars_for`); None when one invoice
    cannot ask that many (the plan is then not offered for Stars)."""
    count = settings.stars_for(price)
    return count if 1 <= count <= MAX_STARS_PER_INVOICE else None


async def start_plan_purchase(
    session: AsyncSession,
    settings: Settings,
    *,
    user_id: int,
    plan_code: str,
    description: str | None = None,
) -> StarsInvoice:
    """The pending row of a plan's Stars invoice: its price in ⭐ rounded up, crediting
    that many ⭐ at the rate (at least the price), the row naming the plan. Raises
    PlanNotFound / PlanNotForSale, or BillingError when the price is past one invoice's ⭐,
    before anything is written (flushed; the caller commits before the invoice is sent)."""
    plan = await plans.get_plan(session, plan_code)
    plans.ensure_for_sale(plan)
    count = plan_stars(settings, plan.price)
    if count is None:
        raise BillingError(f"plan {plan_code!r}: {plan.price} kopecks is past one Stars invoice")
    return await _new_row(
        session, settings, user_id=user_id, stars=count, description=description, plan_id=plan.id
    )


async def _new_row(
    session: AsyncSession,
    settings: Settings,
    *,
    user_id: int,
    stars: int,
    description: str | None,
    plan_id: int | None = None,
) -> StarsInvoice:
    if not 1 <= stars <= MAX_STARS_PER_INVOICE:
        raise BillingError(f"{stars} ⭐ is out of range")
    payment = Payment(
        user_id=user_id,
        provider=PaymentProvider.STARS.value,
        stars=stars,
        amount=settings.stars_kopecks(stars),
        currency=CURRENCY,
        description=description,
        idempotence_key=uuid.uuid4().hex,
        status=PaymentStatus.PENDING.value,
        plan_id=plan_id,
    )
    session.add(payment)
    await session.flush()
    return StarsInvoice(
        payment.id,
        payload_for(payment.id, payment.idempotence_key),
        stars,
        payment.amount,
        plan_id,
    )


async def expire_invoices(session: AsyncSession, *, made_before: datetime) -> list[int]:
    """Stars invoices nobody paid, made before ``made_before``: canceled, so they stop
    counting as open payments (/stats, /paysupport). Nothing is lost: the pre-checkout of a
    canceled row's invoice is refused (``StarsRefused.STALE``: Telegram takes no Stars), and
    one approved just before and paid anyway is credited on a new row (:func:`credit_charge`,
    as an old invoice paid again). Returns the ids; the caller commits."""
    result = await session.execute(
        update(Payment)
        .where(
            Payment.provider == PaymentProvider.STARS.value,
            Payment.status == PaymentStatus.PENDING.value,
            Payment.telegram_charge_id.is_(None),
            Payment.credited_at.is_(None),
            Payment.created_at < made_before,
        )
        .values(status=PaymentStatus.CANCELED.value)
        .returning(Payment.id)
        .execution_options(synchronize_session=False)
    )
    return list(result.scalars())


async def _row(session: AsyncSession, payload: str) -> Any | None:
    parsed = parse_payload(payload)
    if parsed is None:
        return None
    row_id, key = parsed
    row = (
        await session.execute(
            select(
                Payment.id,
                Payment.idempotence_key,
                Payment.provider,
                Payment.status,
                Payment.stars,
                Payment.amount,
                Payment.currency,
                Payment.telegram_charge_id,
                Payment.plan_id,
                # The plan it buys is still for sale (NULL for a top-up).
                ((Plan.archived_at.is_(None)) & (Plan.is_default.is_(False))).label("on_sale"),
                User.telegram_id,
            )
            .join(User, User.id == Payment.user_id)
            .outerjoin(Plan, Plan.id == Payment.plan_id)
            .where(Payment.id == row_id)
        )
    ).one_or_none()
    if row is None or row.idempotence_key != key or row.provider != PaymentProvider.STARS:
        return None
    return row


async def check_pre_checkout(
    session: AsyncSession, *, telegram_id: int, payload: str, currency: str, total_amount: int
) -> StarsRefused | None:
    """None when the payload names an open Stars purchase of this user at this price (and
    the plan it buys, if any, still for sale); otherwise why not (the pre-checkout is then
    refused with that reason)."""
    row = await _row(session, payload)
    if row is None:
        return StarsRefused.UNKNOWN
    if row.telegram_id != telegram_id:
        return StarsRefused.NOT_YOURS
    if currency != CURRENCY or total_amount != row.stars:
        return StarsRefused.PRICE
    if row.status != PaymentStatus.PENDING or row.telegram_charge_id is not None:
        return StarsRefused.STALE
    if row.plan_id is not None and not row.on_sale:
        return StarsRefused.PLAN
    return None


async def credit_charge(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    telegram_id: int,
    payload: str,
    currency: str,
    total_amount: int,
    charge_id: str,
    raw: dict[str, Any] | None = None,
) -> StarsCredit:
    """Credit a ``successful_payment`` once, keyed by its charge id.

    The row the payload names, when it is this payer's open purchase at this price;
    otherwise (an old invoice paid again, a purchase credited meanwhile by another charge,
    a payload that names nothing of ours) a new row for the payer, at the current rate for
    the ⭐ actually paid — Telegram has taken them, so they are credited, never dropped.
    A plan's row, credited, buys its plan in the same transaction (``plan`` of the result;
    the plan archived meanwhile: the money stays on the balance, and the note says so); a
    row of its own for a plan's invoice paid again is a top-up only.
    """
    if currency != CURRENCY or total_amount <= 0:
        raise BillingError(f"charge {charge_id}: {total_amount} {currency} is not a Stars payment")
    for _ in range(3):
        async with sessionmaker() as session:
            done = await _credited(session, charge_id)
            if done is not None:
                return done
            row = await _row(session, payload)
            usable = (
                row is not None
                and row.telegram_id == telegram_id
                and row.stars == total_amount
                and row.status == PaymentStatus.PENDING
                and row.telegram_charge_id is None
            )
            plan_id = None
            if usable:
                payment_id, amount = row.id, row.amount  # type: ignore[union-attr]
                plan_id = row.plan_id  # type: ignore[union-attr]
            else:
                account, _ = await accounts.get_or_create_user(
                    session, telegram_id=telegram_id, free_operations=0
                )
                fresh = await _new_row(
                    session,
                    settings,
                    user_id=account.id,
                    stars=total_amount,
                    description=f"paid again: {payload}"[:128],
                )
                payment_id, amount = fresh.payment_id, fresh.amount
            note: plans.PlanPaymentNote | None = None
            try:
                if plan_id is not None:
                    bought = await credit_and_buy(
                        session,
                        payment_id=payment_id,
                        plan_id=plan_id,
                        amount=amount,
                        currency=CURRENCY,
                        telegram_charge_id=charge_id,
                        raw=raw,
                    )
                    credited, note = bought if bought is not None else (None, None)
                else:
                    credited = await credit_payment(
                        session,
                        payment_id=payment_id,
                        amount=amount,
                        currency=CURRENCY,
                        telegram_charge_id=charge_id,
                        raw=raw,
                    )
                if credited is None:  # credited meanwhile by another charge: a row of its own
                    await session.rollback()
                    continue
                await session.commit()
            except sa_exc.IntegrityError:
                # The same charge credited concurrently (its id is unique): it is done.
                await session.rollback()
                continue
            user = (
                await session.execute(select(User.language).where(User.id == credited.user_id))
            ).one()
        log.info(
            "stars charge %s: %d ⭐ credited %d to payment %s%s",
            charge_id,
            total_amount,
            amount,
            payment_id,
            "" if usable else " (a new row: the payload's purchase was not open)",
        )
        if note is not None:
            log.info("stars payment %s: plan %s: %s", payment_id, note.plan_code, note.kind.value)
        return StarsCredit(
            StarsOutcome.CREDITED,
            payment_id,
            amount,
            total_amount,
            note.balance_after if note is not None else credited.balance_after,
            telegram_id,
            user.language,
            repeat=not usable,
            plan=note,
        )
    raise BillingError(f"charge {charge_id}: not credited after three attempts")


async def _credited(session: AsyncSession, charge_id: str) -> StarsCredit | None:
    row = (
        await session.execute(
            select(
                Payment.id,
                Payment.amount,
                Payment.stars,
                User.balance,
                User.telegram_id,
                User.language,
            )
            .join(User, User.id == Payment.user_id)
            .where(Payment.telegram_charge_id == charge_id, Payment.credited_at.is_not(None))
        )
    ).one_or_none()
    if row is None:
        return None
    return StarsCredit(
        StarsOutcome.ALREADY_CREDITED,
        row.id,
        row.amount,
        row.stars or 0,
        row.balance,
        row.telegram_id,
        row.language,
    )


@dataclass(frozen=True)
class StarsPayment:
    """A credited Stars payment, as an operator's refund needs it."""

    payment_id: int
    charge_id: str
    stars: int
    amount: int
    refunded_amount: int
    telegram_id: int


async def find_payment(
    session: AsyncSession, *, payment_id: int | None = None, charge_id: str | None = None
) -> StarsPayment | None:
    """A Stars payment by our number or Telegram's charge id; None if there is no such
    credited Stars payment."""
    query = (
        select(
            Payment.id,
            Payment.telegram_charge_id,
            Payment.stars,
            Payment.amount,
            Payment.refunded_amount,
            User.telegram_id,
        )
        .join(User, User.id == Payment.user_id)
        .where(
            Payment.provider == PaymentProvider.STARS.value,
            Payment.credited_at.is_not(None),
            Payment.telegram_charge_id.is_not(None),
        )
    )
    if payment_id is not None:
        query = query.where(Payment.id == payment_id)
    elif charge_id is not None:
        query = query.where(Payment.telegram_charge_id == charge_id)
    else:
        return None
    row = (await session.execute(query)).one_or_none()
    if row is None:
        return None
    return StarsPayment(
        row.id,
        row.telegram_charge_id,
        row.stars or 0,
        row.amount,
        row.refunded_amount,
        row.telegram_id,
    )


class RefundOutcome(enum.StrEnum):
    RECORDED = "recorded"
    ALREADY_RECORDED = "already_recorded"
    UNKNOWN = "unknown"  # no credited Stars payment with this charge id


@dataclass(frozen=True)
class StarsRefund:
    outcome: RefundOutcome
    payment_id: int | None = None
    amount: int = 0
    stars: int = 0
    balance_after: int | None = None
    telegram_id: int | None = None
    notice_key: str | None = None


def refund_key(charge_id: str) -> str:
    """The refund's id in the ledger ("payment_refund:<this>") and its message's key."""
    return f"stars:{charge_id}"


async def record_refund(
    sessionmaker: async_sessionmaker[AsyncSession], *, charge_id: str
) -> StarsRefund:
    """A Stars charge returned to the user (refundStarPayment answered true or
    CHARGE_ALREADY_REFUNDED, or Telegram's ``refunded_payment``): the balance is debited by
    what the charge credited, once per charge — the same debit as a YooKassa refund
    (:func:`billing.payments.record_payment_refund`: below zero is the debt on record, and
    the user's "refunded" message in the same transaction)."""
    async with sessionmaker() as session:
        found = await find_payment(session, charge_id=charge_id)
        if found is None:
            return StarsRefund(RefundOutcome.UNKNOWN)
        key = refund_key(charge_id)
        try:
            balance = await record_payment_refund(
                session,
                payment_id=found.payment_id,
                refund_id=key,
                amount=found.amount,
                via="stars",
            )
            await session.commit()
        except (sa_exc.IntegrityError, InvalidAmount):
            # Recorded concurrently (the ledger key is unique), or before: nothing left.
            await session.rollback()
            balance = None
        if balance is None:
            user = (
                await session.execute(
                    select(User.balance).where(User.telegram_id == found.telegram_id)
                )
            ).one()
            return StarsRefund(
                RefundOutcome.ALREADY_RECORDED,
                found.payment_id,
                found.amount,
                found.stars,
                user.balance,
                found.telegram_id,
            )
    log.info(
        "stars charge %s refunded: payment %s debited %d, balance now %d",
        charge_id,
        found.payment_id,
        found.amount,
        balance,
    )
    return StarsRefund(
        RefundOutcome.RECORDED,
        found.payment_id,
        found.amount,
        found.stars,
        balance,
        found.telegram_id,
        notices.refunded_key(key),
    )
