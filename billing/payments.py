"""Payments: creating a YooKassa payment, the one path that credits it, and the one path
that records a refund of it.

``reconcile_payment`` is the only way money comes in: the webhook and the bot's
"Проверить оплату" both call it. It trusts no notification body: it asks the YooKassa API,
compares status, amount, currency and metadata with our own row, and credits once (a unique
ledger key plus a conditional status change). ``reconcile_refund`` is the same for a refund
made in YooKassa's dashboard: the API says what was refunded, the balance is debited once.

The functions that take a session never commit: the caller owns the transaction.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, case, insert, literal, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing import accounts, ledger, notices, plans
from billing.bounds import INT64_MAX, parse_id
from billing.db import one_statement_sessions
from billing.errors import (
    AmountOutOfRange,
    BillingError,
    InvalidAmount,
    PaymentMismatch,
    PaymentNotCreditable,
    PaymentNotFound,
)
from billing.models import (
    UNFINISHED_REFUNDS,
    LedgerEntry,
    LedgerKind,
    NoticeKind,
    Payment,
    PaymentNotice,
    PaymentProvider,
    PaymentRefund,
    PaymentStatus,
    RefundStatus,
    User,
    utcnow,
)
from billing.settings import Settings
from billing.yookassa import (
    GatewayRejected,
    GatewayUnavailable,
    ProviderPayment,
    ProviderPaymentNotFound,
    ProviderRefund,
    YooKassaGateway,
)

log = logging.getLogger(__name__)

CREATE_ATTEMPTS = 3
CREATE_BACKOFF = 0.5  # seconds before the second create attempt, doubled before each next
ROW_KEY = "payment_row_key"  # metadata: the payment row's idempotence key (see _check_metadata)
PLAN_KEY = "plan_id"  # metadata: the plan a payment buys once credited (start_plan_payment)


class TopUpUnavailable(BillingError):
    """YooKassa is down or misconfigured; the payment row was marked failed."""

    def __init__(self, payment_id: int, reason: str):
        super().__init__(f"payment {payment_id}: {reason}")
        self.payment_id = payment_id
        self.reason = reason


@dataclass(frozen=True)
class TopUpStarted:
    payment_id: int
    yookassa_payment_id: str
    confirmation_url: str
    amount: int


class Outcome(enum.StrEnum):
    CREDITED = "credited"
    ALREADY_CREDITED = "already_credited"
    PENDING = "pending"
    WAITING_FOR_CAPTURE = "waiting_for_capture"
    CANCELED = "canceled"
    UNKNOWN_PAYMENT = "unknown_payment"
    MISMATCH = "mismatch"


@dataclass(frozen=True)
class ReconcileResult:
    outcome: Outcome
    payment_id: int | None = None
    user_id: int | None = None
    telegram_id: int | None = None
    language: str | None = None
    amount: int = 0
    balance_after: int | None = None
    cancellation_party: str | None = None
    cancellation_reason: str | None = None
    detail: str = ""
    # A plan's payment: what became of the plan (its message says so instead of "credited").
    plan: plans.PlanPaymentNote | None = None


@dataclass(frozen=True)
class PaymentSummary:
    """One of a user's payments as /paysupport lists it."""

    id: int
    amount: int
    currency: str
    status: str
    created_at: datetime
    # What support looks up: YooKassa's payment id, or Telegram's charge id of a Stars one.
    provider_id: str | None


async def recent_payments(
    session: AsyncSession, *, user_id: int, limit: int = 5
) -> list[PaymentSummary]:
    """The user's latest payments, newest first (failed attempts that never reached the
    provider left out: there is nothing to ask support about)."""
    rows = (
        await session.execute(
            select(
                Payment.id,
                Payment.amount,
                Payment.currency,
                Payment.status,
                Payment.created_at,
                Payment.yookassa_payment_id,
                Payment.telegram_charge_id,
            )
            .where(Payment.user_id == user_id, Payment.status != PaymentStatus.FAILED.value)
            .order_by(Payment.id.desc())
            .limit(limit)
        )
    ).all()
    return [
        PaymentSummary(
            id=r.id,
            amount=r.amount,
            currency=r.currency,
            status=r.status,
            created_at=r.created_at if r.created_at.tzinfo else r.created_at.replace(tzinfo=UTC),
            provider_id=r.yookassa_payment_id or r.telegram_charge_id,
        )
        for r in rows
    ]


async def start_topup(
    sessionmaker: async_sessionmaker[AsyncSession],
    gateway: YooKassaGateway,
    settings: Settings,
    *,
    user_id: int,
    amount: int,
    email: str | None = None,
    description: str | None = None,
    plan: Any = None,
) -> TopUpStarted:
    """Commit a pending row with our idempotence key, then create the YooKassa payment.

    A timeout is retried with the same key, so YooKassa creates one payment however many
    times we ask. If it stays unreachable (or rejects us) the row is marked failed.
    ``plan`` (a :class:`~billing.models.Plan`, see :func:`start_plan_payment`): the payment
    buys it once credited; its metadata names it.
    """
    async with sessionmaker() as session:
        user = await accounts.get_user(session, user_id=user_id)
        payment = await create_payment(
            session,
            user_id=user_id,
            amount=amount,
            currency=settings.YOOKASSA_CURRENCY,
            description=description,
            idempotence_key=uuid.uuid4().hex,
            plan_id=plan.id if plan is not None else None,
        )
        await session.commit()
        payment_id, key = payment.id, payment.idempotence_key
    if plan is not None:
        description = description or f"Media Lab: тариф «{plan.name_ru}», заказ {payment_id}"
    description = description or f"Media Lab: пополнение баланса, заказ {payment_id}"
    metadata = {
        "payment_row_id": str(payment_id),
        "user_id": str(user_id),
        "telegram_id": str(user.telegram_id),
        # The row's random key: row and user ids repeat in a database that starts again,
        # and YooKassa goes on notifying of the old one's payments for a day.
        ROW_KEY: key,
    }
    if plan is not None:
        metadata[PLAN_KEY] = str(plan.id)
    created: ProviderPayment | None = None
    error: Exception | None = None
    for attempt in range(CREATE_ATTEMPTS):
        try:
            created = await gateway.create_payment(
                amount=amount,
                currency=settings.YOOKASSA_CURRENCY,
                description=description,
                metadata=metadata,
                idempotence_key=key,
                receipt_email=email,
            )
            break
        except GatewayUnavailable as exc:
            error = exc
            log.warning("payment %s: create attempt %d failed: %s", payment_id, attempt + 1, exc)
            if attempt + 1 < CREATE_ATTEMPTS:
                await asyncio.sleep(CREATE_BACKOFF * 2**attempt)
        except GatewayRejected as exc:
            error = exc
            log.error("payment %s: YooKassa rejected the create call: %s", payment_id, exc)
            break
        except Exception as exc:  # noqa: BLE001 - the row must not stay pending forever
            error = exc
            log.exception("payment %s: the create call failed unexpectedly", payment_id)
            break
    if created is None:
        async with sessionmaker() as session:
            await mark_payment_failed(session, payment_id=payment_id, reason=type(error).__name__)
            await session.commit()
        raise TopUpUnavailable(payment_id, str(error))
    async with sessionmaker() as session:
        await attach_provider_payment(
            session,
            payment_id=payment_id,
            yookassa_payment_id=created.id,
            confirmation_url=created.confirmation_url,
            status=created.status,
            raw=created.raw,
        )
        await session.commit()
    if not created.confirmation_url:
        raise TopUpUnavailable(payment_id, "YooKassa returned no confirmation URL")
    return TopUpStarted(payment_id, created.id, created.confirmation_url, amount)


class ReceiptEmailNeeded(BillingError):
    """YOOKASSA_RECEIPTS_ENABLED and the user has no e-mail for the receipt yet: nothing was
    written; ask for it (``accounts.set_email``) and start again."""

    def __init__(self, user_id: int):
        super().__init__(f"user {user_id}: an e-mail for the receipt is needed")
        self.user_id = user_id


async def start_yookassa_payment(
    sessionmaker: async_sessionmaker[AsyncSession],
    gateway: YooKassaGateway,
    settings: Settings,
    *,
    user_id: int,
    amount_rub: int | None = None,
    plan_code: str | None = None,
    description: str | None = None,
) -> TopUpStarted:
    """The one way a YooKassa payment starts, wherever it is asked for (the chat's top-up
    menu and plan card, the Mini App): a top-up of ``amount_rub`` whole rubles within
    TOPUP_MIN_RUB..TOPUP_MAX_RUB, or a plan's price with the plan named in the metadata
    (its credit buys the plan, :func:`plans.buy_after_payment`). The checks come before
    anything is written; then :func:`start_topup`: the pending row and its idempotence key
    committed first, the SDK call retried with that key.

    Raises ``InvalidAmount`` / ``AmountOutOfRange`` (an amount outside the range, or neither
    or both of an amount and a plan), ``PlanNotFound`` / ``PlanNotForSale`` (also a plan of
    no price), :class:`ReceiptEmailNeeded`, and what :func:`start_topup` raises."""
    if (amount_rub is None) == (plan_code is None):
        raise InvalidAmount(amount_rub, "name an amount or a plan, not both or neither")
    plan = None
    async with sessionmaker() as session:
        if plan_code is not None:
            plan = await plans.get_plan(session, plan_code)
            plans.ensure_for_sale(plan)
            if plan.price <= 0:
                raise plans.PlanNotForSale(plan.code, "free")
            amount = plan.price
        else:
            if not isinstance(amount_rub, int) or isinstance(amount_rub, bool):
                raise InvalidAmount(amount_rub)
            if not settings.TOPUP_MIN_RUB <= amount_rub <= settings.TOPUP_MAX_RUB:
                raise AmountOutOfRange(
                    amount_rub,
                    settings.TOPUP_MAX_RUB,
                    f"a top-up is {settings.TOPUP_MIN_RUB} to {settings.TOPUP_MAX_RUB} rubles",
                )
            amount = amount_rub * 100
        email = None
        if settings.YOOKASSA_RECEIPTS_ENABLED:
            email = await session.scalar(select(User.email).where(User.id == user_id))
            if not email:
                raise ReceiptEmailNeeded(user_id)
    return await start_topup(
        sessionmaker,
        gateway,
        settings,
        user_id=user_id,
        amount=amount,
        email=email,
        description=description,
        plan=plan,
    )


async def start_plan_payment(
    sessionmaker: async_sessionmaker[AsyncSession],
    gateway: YooKassaGateway,
    settings: Settings,
    *,
    user_id: int,
    plan_code: str,
) -> TopUpStarted:
    """A YooKassa payment of a plan's price (:func:`start_yookassa_payment`)."""
    return await start_yookassa_payment(
        sessionmaker, gateway, settings, user_id=user_id, plan_code=plan_code
    )


@dataclass(frozen=True)
class PaymentState:
    """One of a user's YooKassa payments as the Mini App shows it while it waits."""

    id: int
    amount: int
    status: str
    credited: bool
    confirmation_url: str | None


async def payment_state(
    session: AsyncSession, *, user_id: int, payment_id: int
) -> PaymentState | None:
    """The user's own payment ``payment_id`` (None: not theirs, or no such payment)."""
    row = (
        await session.execute(
            select(
                Payment.id,
                Payment.amount,
                Payment.status,
                Payment.credited_at,
                Payment.confirmation_url,
            ).where(
                Payment.id == payment_id,
                Payment.user_id == user_id,
                Payment.provider == PaymentProvider.YOOKASSA.value,
            )
        )
    ).one_or_none()
    if row is None:
        return None
    return PaymentState(
        row.id, row.amount, row.status, row.credited_at is not None, row.confirmation_url
    )


def plan_of(metadata: dict[str, Any]) -> int | None:
    """The plan a payment buys, from the metadata the YooKassa API gave back (our own: it
    was checked to be this row's by its key). Anything but a plain id: none (a top-up)."""
    return parse_id(metadata.get(PLAN_KEY))


def _check_metadata(row: Row[Any], remote: ProviderPayment) -> str | None:
    if remote.metadata.get("payment_row_id") != str(row.id):
        return f"metadata payment_row_id {remote.metadata.get('payment_row_id')!r} != {row.id}"
    if remote.metadata.get("user_id") != str(row.user_id):
        return f"metadata user_id {remote.metadata.get('user_id')!r} != {row.user_id}"
    # Ids alone match a payment of another database (restored, recreated) that reused them:
    # its money would go to this row, often another person's. The row's random key tells
    # them apart; a payment made before the key was sent still has the Telegram id.
    if ROW_KEY in remote.metadata:
        if remote.metadata[ROW_KEY] != row.idempotence_key:
            return f"metadata {ROW_KEY} is not this row's (a payment of another database)"
    elif "telegram_id" in remote.metadata and remote.metadata["telegram_id"] != str(
        row.telegram_id
    ):
        return f"metadata telegram_id {remote.metadata['telegram_id']!r} != {row.telegram_id}"
    if row.yookassa_payment_id is not None and row.yookassa_payment_id != remote.id:
        return f"YooKassa id {remote.id!r} != our {row.yookassa_payment_id!r}"
    return None


_payments = Payment.__table__
_users = User.__table__
# What reconcile_payment needs of the payment row and its user, in one Core query.
_LOAD = select(
    _payments.c.id,
    _payments.c.user_id,
    _payments.c.yookassa_payment_id,
    _payments.c.idempotence_key,
    _payments.c.amount,
    _payments.c.currency,
    _payments.c.credited_at,
    _users.c.telegram_id,
    _users.c.language,
    _users.c.balance,
).join_from(_payments, _users, _users.c.id == _payments.c.user_id)


async def _load(
    session: AsyncSession, payment_id: int | None, yookassa_payment_id: str | None
) -> Row[Any] | None:
    if payment_id is not None:
        query = _LOAD.where(_payments.c.id == payment_id)
    else:
        query = _LOAD.where(_payments.c.yookassa_payment_id == yookassa_payment_id)
    # Through the session's connection: a plain Core result, no ORM objects or identity map.
    connection = await session.connection()
    return (await connection.execute(query)).one_or_none()


async def reconcile_payment(
    sessionmaker: async_sessionmaker[AsyncSession],
    gateway: YooKassaGateway,
    *,
    payment_id: int | None = None,
    yookassa_payment_id: str | None = None,
) -> ReconcileResult:
    """Bring our payment row in line with what the YooKassa API says; credit at most once.

    Raises ``GatewayUnavailable`` when YooKassa cannot be asked (the webhook answers 5xx and
    YooKassa retries; the bot asks the user to check again later).
    """
    if payment_id is None and not yookassa_payment_id:
        return ReconcileResult(Outcome.UNKNOWN_PAYMENT, detail="no payment reference")
    # Two short units of work with the API call between them: no connection is held while
    # YooKassa answers (up to its timeout), so a slow API cannot drain the pool. The read
    # and the credit are one statement each (the credit's CTE is atomic by itself on
    # PostgreSQL): they go without BEGIN and COMMIT round trips.
    one_statement = one_statement_sessions(sessionmaker)
    async with one_statement() as session:
        row = await _load(session, payment_id, yookassa_payment_id)
        if row is None:
            return ReconcileResult(Outcome.UNKNOWN_PAYMENT, detail="no such payment row")
        base = {
            "payment_id": row.id,
            "user_id": row.user_id,
            "telegram_id": row.telegram_id,
            "language": row.language,
            "amount": row.amount,
        }
        if row.credited_at is not None:
            return ReconcileResult(
                Outcome.ALREADY_CREDITED, balance_after=row.balance, detail="credited", **base
            )
        remote_id = row.yookassa_payment_id or yookassa_payment_id
        if not remote_id:
            return ReconcileResult(Outcome.PENDING, detail="never reached YooKassa", **base)
    try:
        remote = await gateway.fetch_payment(remote_id)
    except ProviderPaymentNotFound as exc:
        if row.yookassa_payment_id is None:
            raise  # an id only the notification named: not a payment of ours
        # YooKassa gave us this id when it created the payment: the API we ask now is not
        # the one that made it (another shop's credentials, another URL). Not "unknown":
        # that would let the notification go unanswered for good.
        log.error("payment %s: YooKassa does not know its id %s: %s", row.id, remote_id, exc)
        raise GatewayRejected(f"YooKassa does not know payment {remote_id} it created") from None
    problem = _check_metadata(row, remote)
    if problem is None and remote.status == PaymentStatus.SUCCEEDED:
        if remote.amount != row.amount:
            problem = f"amount {remote.amount} != {row.amount}"
        elif remote.currency != row.currency:
            problem = f"currency {remote.currency} != {row.currency}"
    if problem is not None:
        log.error("payment %s: YooKassa disagrees with our row: %s", row.id, problem)
        return ReconcileResult(Outcome.MISMATCH, detail=problem, **base)

    if remote.status == PaymentStatus.SUCCEEDED and plan_of(remote.metadata) is not None:
        return await _credit_and_buy(sessionmaker, row, remote, base)
    if remote.status == PaymentStatus.SUCCEEDED:
        async with one_statement() as session:
            try:
                credited = await credit_payment(
                    session,
                    payment_id=row.id,
                    amount=remote.amount,
                    currency=remote.currency,
                    yookassa_payment_id=remote.id,
                    raw=remote.raw,
                )
            except (PaymentMismatch, PaymentNotCreditable) as exc:
                await session.rollback()
                log.error("payment %s: not credited: %s", row.id, exc)
                return ReconcileResult(Outcome.MISMATCH, detail=str(exc), **base)
            await session.commit()
            if credited is None:
                fresh = await accounts.get_user(session, user_id=row.user_id)
                return ReconcileResult(
                    Outcome.ALREADY_CREDITED, balance_after=fresh.balance, **base
                )
            return ReconcileResult(
                Outcome.CREDITED, balance_after=credited.balance_after, detail="credited", **base
            )
    async with sessionmaker() as session:
        if remote.status == PaymentStatus.CANCELED:
            changed = await mark_payment_canceled(
                session,
                payment_id=row.id,
                reason=remote.cancellation_reason,
                raw=remote.raw,
            )
            await session.commit()
            return ReconcileResult(
                Outcome.CANCELED,
                cancellation_party=remote.cancellation_party,
                cancellation_reason=remote.cancellation_reason,
                detail="canceled now" if changed else "canceled before",
                **base,
            )
        if remote.status == PaymentStatus.WAITING_FOR_CAPTURE:
            await mark_payment_waiting(session, payment_id=row.id)
            await session.commit()
            return ReconcileResult(Outcome.WAITING_FOR_CAPTURE, **base)
    return ReconcileResult(Outcome.PENDING, detail=f"YooKassa says {remote.status}", **base)


async def _credit_and_buy(
    sessionmaker: async_sessionmaker[AsyncSession],
    row: Row[Any],
    remote: ProviderPayment,
    base: dict[str, Any],
) -> ReconcileResult:
    """A YooKassa plan payment: :func:`credit_and_buy` in a transaction of its own."""
    plan_id = plan_of(remote.metadata)
    assert plan_id is not None
    async with sessionmaker() as session:
        try:
            bought = await credit_and_buy(
                session,
                payment_id=row.id,
                plan_id=plan_id,
                amount=remote.amount,
                currency=remote.currency,
                yookassa_payment_id=remote.id,
                raw=remote.raw,
            )
        except (PaymentMismatch, PaymentNotCreditable) as exc:
            await session.rollback()
            log.error("payment %s: not credited: %s", row.id, exc)
            return ReconcileResult(Outcome.MISMATCH, detail=str(exc), **base)
        if bought is None:
            await session.rollback()
            fresh = await accounts.get_user(session, user_id=row.user_id)
            return ReconcileResult(Outcome.ALREADY_CREDITED, balance_after=fresh.balance, **base)
        _, note = bought
        await session.commit()
    log.info(
        "payment %s: credited %d and plan %s: %s (%s)",
        row.id,
        remote.amount,
        note.plan_code,
        note.kind.value,
        note.reason,
    )
    return ReconcileResult(
        Outcome.CREDITED,
        balance_after=note.balance_after,
        detail="credited",
        plan=note,
        **base,
    )


@dataclass(frozen=True)
class CreditResult:
    payment_id: int
    user_id: int
    telegram_id: int
    amount: int
    balance_after: int


async def credit_and_buy(
    session: AsyncSession,
    *,
    payment_id: int,
    plan_id: int,
    amount: int,
    currency: str,
    yookassa_payment_id: str | None = None,
    telegram_charge_id: str | None = None,
    raw: dict[str, Any] | None = None,
) -> tuple[CreditResult, plans.PlanPaymentNote] | None:
    """A plan's payment, whoever took it (YooKassa, Telegram Stars): the once-only credit,
    then the plan bought from the balance, in the caller's ONE transaction (so a plan is
    never bought without its money, nor the money credited twice); one message, under the
    credit's key, says what became of the plan. None when it was credited before; raises
    what :func:`credit_payment` raises."""
    credited = await credit_payment(
        session,
        payment_id=payment_id,
        amount=amount,
        currency=currency,
        yookassa_payment_id=yookassa_payment_id,
        telegram_charge_id=telegram_charge_id,
        raw=raw,
        notice=False,
    )
    if credited is None:
        return None
    note = await plans.buy_after_payment(
        session,
        user_id=credited.user_id,
        plan_id=plan_id,
        payment_id=payment_id,
        amount=amount,
    )
    return credited, note


CREDITABLE = (PaymentStatus.PENDING, PaymentStatus.WAITING_FOR_CAPTURE, PaymentStatus.FAILED)

_payments = Payment.__table__


def _notice_step(
    *, kind: NoticeKind, key: str, payment_id: int, amount: int, reason: str | None = None
) -> ledger.Step:
    """The user's message about this change (billing.notices), in the same chain."""
    table = PaymentNotice.__table__

    def build(p: Any) -> Any:
        values = {
            "key": literal(key),
            "reason": literal(reason, table.c.reason.type),
            "payment_id": literal(payment_id, table.c.payment_id.type),
            "user_id": p["moved"].id,
            "kind": literal(kind.value),
            "amount": literal(amount, table.c.amount.type),
            "balance_after": p["moved"].balance,
            "created_at": literal(utcnow(), table.c.created_at.type),
            "attempts": literal(0),
        }
        return (
            insert(table)
            .from_select(
                list(values),
                select(*(v.label(k) for k, v in values.items())),
                include_defaults=False,
            )
            .returning(table.c.id)
        )

    return ledger.Step("notice", build)


async def create_payment(
    session: AsyncSession,
    *,
    user_id: int,
    amount: int,
    currency: str,
    description: str | None = None,
    idempotence_key: str | None = None,
    plan_id: int | None = None,
) -> Payment:
    """The pending row, written (and committed by the caller) before YooKassa is called;
    ``plan_id``: the plan it buys (for the books and reports: the credit reads the plan from
    YooKassa's own metadata)."""
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise InvalidAmount(amount)
    if amount > INT64_MAX:
        raise AmountOutOfRange(amount, INT64_MAX)
    payment = Payment(
        user_id=user_id,
        amount=amount,
        currency=currency,
        description=description,
        idempotence_key=idempotence_key or uuid.uuid4().hex,
        status=PaymentStatus.PENDING.value,
        plan_id=plan_id,
    )
    session.add(payment)
    await session.flush()
    return payment


async def attach_provider_payment(
    session: AsyncSession,
    *,
    payment_id: int,
    yookassa_payment_id: str,
    confirmation_url: str | None,
    status: str,
    raw: dict[str, Any] | None = None,
) -> None:
    """Record YooKassa's answer to the create call (a failed row comes back to pending)."""
    new_status = (
        status if status in (PaymentStatus.PENDING, PaymentStatus.WAITING_FOR_CAPTURE) else None
    )
    values: dict[str, Any] = {
        "yookassa_payment_id": yookassa_payment_id,
        "confirmation_url": confirmation_url,
        "raw": raw,
    }
    if new_status is not None:
        values["status"] = case(
            (Payment.status == PaymentStatus.FAILED.value, new_status), else_=Payment.status
        )
    await session.execute(
        update(Payment)
        .where(
            Payment.id == payment_id,
            (Payment.yookassa_payment_id.is_(None))
            | (Payment.yookassa_payment_id == yookassa_payment_id),
        )
        .values(**values)
    )


async def mark_payment_failed(session: AsyncSession, *, payment_id: int, reason: str) -> bool:
    result = await session.execute(
        update(Payment)
        .where(Payment.id == payment_id, Payment.status == PaymentStatus.PENDING.value)
        .values(status=PaymentStatus.FAILED.value, cancellation_reason=reason[:64])
        .returning(Payment.id)
    )
    return result.scalar_one_or_none() is not None


async def mark_payment_canceled(
    session: AsyncSession,
    *,
    payment_id: int,
    reason: str | None,
    raw: dict[str, Any] | None = None,
) -> bool:
    """Canceled is final; a succeeded payment is never canceled (YooKassa's rules).

    The call that cancels also records the user's message (``billing.notices``)."""
    row = (
        await session.execute(
            update(Payment)
            .where(
                Payment.id == payment_id,
                Payment.status.in_(CREDITABLE),
                Payment.credited_at.is_(None),
            )
            .values(
                status=PaymentStatus.CANCELED.value,
                cancellation_reason=(reason or "")[:64] or None,
                raw=raw,
            )
            .returning(Payment.user_id, Payment.amount)
        )
    ).one_or_none()
    if row is None:
        return False
    await notices.add(
        session,
        key=notices.canceled_key(payment_id),
        kind=NoticeKind.CANCELED,
        payment_id=payment_id,
        user_id=row.user_id,
        amount=row.amount,
        reason=reason,
    )
    return True


async def mark_payment_waiting(session: AsyncSession, *, payment_id: int) -> bool:
    result = await session.execute(
        update(Payment)
        .where(Payment.id == payment_id, Payment.status == PaymentStatus.PENDING.value)
        .values(status=PaymentStatus.WAITING_FOR_CAPTURE.value)
        .returning(Payment.id)
    )
    return result.scalar_one_or_none() is not None


async def credit_payment(
    session: AsyncSession,
    *,
    payment_id: int,
    amount: int,
    currency: str,
    yookassa_payment_id: str | None = None,
    telegram_charge_id: str | None = None,
    raw: dict[str, Any] | None = None,
    notice: bool = True,
) -> CreditResult | None:
    """Credit a succeeded payment to the balance, exactly once.

    ``notice=False``: the caller records the user's message itself, under the same key
    (a plan's payment: :func:`billing.plans.buy_after_payment`).

    ``amount``/``currency``/``yookassa_payment_id`` are what YooKassa's API says; they must
    equal our row. Returns None when it was already credited. Raises ``PaymentNotFound``,
    ``PaymentMismatch`` or ``PaymentNotCreditable`` (canceled / refunded). The credit also
    records the user's "credited" message (``billing.notices``), in the same transaction.

    On PostgreSQL it writes with one SQL statement, so a Payment or User object the caller
    already loaded into this session is not refreshed (no caller keeps one).
    """
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise InvalidAmount(amount)
    conditions = [
        Payment.id == payment_id,
        Payment.status.in_(CREDITABLE),
        Payment.credited_at.is_(None),
        Payment.amount == amount,
        Payment.currency == currency,
    ]
    values: dict[str, Any] = {
        "status": PaymentStatus.SUCCEEDED.value,
        "credited_at": utcnow(),
    }
    if yookassa_payment_id is not None:
        conditions.append(
            (Payment.yookassa_payment_id.is_(None))
            | (Payment.yookassa_payment_id == yookassa_payment_id)
        )
        values["yookassa_payment_id"] = yookassa_payment_id
    if telegram_charge_id is not None:
        # A Stars payment (billing.stars): the row takes the charge that pays it, once (the
        # column is unique: one charge never credits two rows).
        conditions.append(Payment.telegram_charge_id.is_(None))
        values["telegram_charge_id"] = telegram_charge_id
    if raw is not None:
        values["raw"] = raw
    # One chain (billing.ledger), one statement on PostgreSQL: the payment's conditional
    # status change, the balance, the entry "topup:<id>", the "credited" message.
    won = await ledger.move(
        session,
        owner=update(_payments).where(*conditions).values(**values).returning(_payments.c.user_id),
        kind=LedgerKind.TOPUP,
        key=f"topup:{payment_id}",
        amount=amount,
        payment_id=payment_id,
        after=[
            _notice_step(
                kind=NoticeKind.CREDITED,
                key=notices.credited_key(payment_id),
                payment_id=payment_id,
                amount=amount,
            )
        ]
        if notice
        else None,
    )
    credited = (
        CreditResult(payment_id, won.id, won.telegram_id, amount, won.balance) if won else None
    )
    if credited is None:
        await _why_not_credited(
            session,
            payment_id=payment_id,
            amount=amount,
            currency=currency,
            yookassa_payment_id=yookassa_payment_id,
        )
        return None
    return credited


async def _why_not_credited(
    session: AsyncSession,
    *,
    payment_id: int,
    amount: int,
    currency: str,
    yookassa_payment_id: str | None,
) -> None:
    """The conditional update matched no row: return if it was credited before, else raise."""
    row = (
        await session.execute(
            select(
                Payment.credited_at,
                Payment.amount,
                Payment.currency,
                Payment.yookassa_payment_id,
                Payment.status,
            ).where(Payment.id == payment_id)
        )
    ).one_or_none()
    if row is None:
        raise PaymentNotFound(payment_id)
    if row.credited_at is not None:
        return
    if row.amount != amount:
        raise PaymentMismatch(payment_id, "amount", row.amount, amount)
    if row.currency != currency:
        raise PaymentMismatch(payment_id, "currency", row.currency, currency)
    if yookassa_payment_id is not None and row.yookassa_payment_id not in (
        None,
        yookassa_payment_id,
    ):
        raise PaymentMismatch(
            payment_id, "yookassa_payment_id", row.yookassa_payment_id, yookassa_payment_id
        )
    raise PaymentNotCreditable(payment_id, row.status)


async def record_payment_refund(
    session: AsyncSession,
    *,
    payment_id: int,
    refund_id: str,
    amount: int,
    via: str = "yookassa",
) -> int | None:
    """Money returned to the card through YooKassa (or, ``via="stars"``, a Telegram Stars
    charge returned, billing.stars): debit it from the balance, once per refund.

    The balance may go below zero when the money was already spent: the negative balance,
    with this ledger entry, is the record of the debt; paid operations stay closed until a
    top-up covers it. Returns the new balance, or None when this refund was recorded before.
    Records the user's "refunded" message (``billing.notices``) in the same transaction.
    """
    if not isinstance(amount, int) or amount <= 0:
        raise InvalidAmount(amount)
    if amount > INT64_MAX:
        raise AmountOutOfRange(amount, INT64_MAX)
    key = f"payment_refund:{refund_id}"
    if await session.scalar(select(LedgerEntry.id).where(LedgerEntry.idempotency_key == key)):
        return None
    user = await ledger.move(
        session,
        owner=update(_payments)
        .where(
            Payment.id == payment_id,
            Payment.credited_at.is_not(None),
            Payment.refunded_amount <= Payment.amount - amount,  # no overflow
        )
        .values(
            refunded_amount=Payment.refunded_amount + amount,
            status=case(
                (
                    Payment.refunded_amount + amount == Payment.amount,
                    PaymentStatus.REFUNDED.value,
                ),
                else_=Payment.status,
            ),
        )
        .returning(_payments.c.user_id),
        kind=LedgerKind.PAYMENT_REFUND,
        key=key,
        amount=-amount,
        payment_id=payment_id,
        reason=f"YooKassa refund {refund_id}"
        if via == "yookassa"
        else f"{via} refund {refund_id}",
        after=[
            _notice_step(
                kind=NoticeKind.REFUNDED,
                key=notices.refunded_key(refund_id),
                payment_id=payment_id,
                amount=amount,
                # Where the money went back (the message says "to the card" or "in Stars").
                reason=None if via == "yookassa" else via,
            )
        ],
    )
    if user is None:
        exists = await session.scalar(select(Payment.id).where(Payment.id == payment_id))
        if exists is None:
            raise PaymentNotFound(payment_id)
        raise InvalidAmount(amount, "refund exceeds what was credited for this payment")
    return user.balance


class RefundOutcome(enum.StrEnum):
    RECORDED = "refund_recorded"
    ALREADY_RECORDED = "already_recorded"
    NOT_SUCCEEDED = "refund_not_succeeded"
    UNKNOWN_PAYMENT = "unknown_payment"
    MISMATCH = "mismatch"
    NOT_PAID_YET = "api_not_there_yet"  # the API does not show the payment paid yet: retry


@dataclass(frozen=True)
class RefundReconciled:
    outcome: RefundOutcome
    detail: str = ""
    # The credit this call made first, when the refund overtook the payment's notification:
    # its "credited" message goes before the refund's.
    credit: ReconcileResult | None = None
    refund_id: str = ""
    amount: int = 0
    telegram_id: int | None = None
    language: str | None = None
    balance_after: int | None = None


async def reconcile_refund(
    sessionmaker: async_sessionmaker[AsyncSession], gateway: YooKassaGateway, *, refund_id: str
) -> RefundReconciled:
    """A refund made in YooKassa: read it from the API, check it against our payment row and
    debit the balance once (``record_payment_refund``). Raises ``GatewayUnavailable`` and
    ``ProviderPaymentNotFound`` from the API."""
    return await settle_refund(sessionmaker, gateway, await gateway.fetch_refund(refund_id))


async def settle_refund(
    sessionmaker: async_sessionmaker[AsyncSession],
    gateway: YooKassaGateway,
    refund: ProviderRefund,
) -> RefundReconciled:
    """The debit of a refund as the YooKassa API gave it (fetched by :func:`reconcile_refund`
    for a notification, or the answer to an operator's create call, :mod:`billing.refunds`):
    the one path that records a refund, once per YooKassa refund id. An operator's request
    for this refund is marked succeeded once the debit is on record (by whichever path)."""
    refund_id = refund.id
    if refund.status != "succeeded":
        log.warning("refund %s: the API says %s, not succeeded: ignored", refund_id, refund.status)
        return RefundReconciled(RefundOutcome.NOT_SUCCEEDED, refund.status)
    async with sessionmaker() as session:
        row = (
            await session.execute(
                select(Payment.id, Payment.currency, Payment.credited_at, Payment.user_id).where(
                    Payment.yookassa_payment_id == refund.payment_id
                )
            )
        ).one_or_none()
    if row is None:
        log.warning("refund %s of unknown payment %s: ignored", refund_id, refund.payment_id)
        return RefundReconciled(RefundOutcome.UNKNOWN_PAYMENT)
    if refund.currency != row.currency:
        log.error(
            "refund %s of payment %s: currency %s != %s: not recorded",
            refund_id,
            row.id,
            refund.currency,
            row.currency,
        )
        return RefundReconciled(RefundOutcome.MISMATCH, "currency")
    credit = None
    if row.credited_at is None:
        # The refund overtook the payment.succeeded notification: credit first (the API says
        # whether it succeeded), so the debit has a credit to undo.
        credit = await reconcile_payment(sessionmaker, gateway, payment_id=row.id)
        if credit.outcome is Outcome.PENDING:
            log.warning(
                "refund %s of payment %s, which the API does not show paid yet (%s): "
                "asking for a retry",
                refund_id,
                row.id,
                credit.detail,
            )
            return RefundReconciled(RefundOutcome.NOT_PAID_YET, credit.detail)
        if credit.outcome not in (Outcome.CREDITED, Outcome.ALREADY_CREDITED):
            log.error(
                "refund %s of payment %s that cannot be credited (%s): not recorded",
                refund_id,
                row.id,
                credit.outcome.value,
            )
            return RefundReconciled(RefundOutcome.MISMATCH, credit.outcome.value)
        if credit.outcome is not Outcome.CREDITED:
            credit = None
    key = f"payment_refund:{refund.id}"
    async with sessionmaker() as session:
        try:
            balance = await record_payment_refund(
                session, payment_id=row.id, refund_id=refund.id, amount=refund.amount
            )
            await session.commit()
        except sa_exc.IntegrityError:
            # A concurrent delivery of the same refund inserted the same ledger key first.
            await session.rollback()
            balance = None
        except (InvalidAmount, PaymentNotFound) as exc:
            await session.rollback()
            recorded = await session.scalar(
                select(LedgerEntry.id).where(LedgerEntry.idempotency_key == key)
            )
            if recorded is None:
                log.error("refund %s of payment %s not recorded: %s", refund_id, row.id, exc)
                return RefundReconciled(RefundOutcome.MISMATCH, str(exc)[:200], credit)
            balance = None
        await _finish_operator_request(session, refund.id)
        if balance is None:
            return RefundReconciled(RefundOutcome.ALREADY_RECORDED, credit=credit)
        user = (
            await session.execute(
                select(User.telegram_id, User.language).where(User.id == row.user_id)
            )
        ).one()
    log.info(
        "refund %s of payment %s: debited %d from user %s, balance now %d",
        refund_id,
        row.id,
        refund.amount,
        row.user_id,
        balance,
    )
    return RefundReconciled(
        RefundOutcome.RECORDED,
        credit=credit,
        refund_id=refund.id,
        amount=refund.amount,
        telegram_id=user.telegram_id,
        language=user.language,
        balance_after=balance,
    )


async def _finish_operator_request(session: AsyncSession, refund_id: str) -> None:
    """The debit of this refund is on record: an operator's request for it (if any) is done.
    In a transaction of its own, after the debit's (a lost update here is found again by the
    request's next retry, which ends the same way)."""
    await session.execute(
        update(PaymentRefund)
        .where(
            PaymentRefund.yookassa_refund_id == refund_id,
            PaymentRefund.status.in_(UNFINISHED_REFUNDS),
        )
        .values(status=RefundStatus.SUCCEEDED.value, error=None)
    )
    await session.commit()
