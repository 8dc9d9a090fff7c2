"""Top-ups: creating a YooKassa payment, and the one path that credits it.

``reconcile_payment`` is the only way money comes in: the webhook and the bot's
"Проверить оплату" both call it. It trusts no notification body: it asks the YooKassa API,
compares status, amount, currency and metadata with our own row, and credits once (a unique
ledger key plus a conditional status change).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing import service
from billing.db import one_statement_sessions
from billing.errors import (
    BillingError,
    PaymentMismatch,
    PaymentNotCreditable,
)
from billing.models import Payment, PaymentStatus, User
from billing.settings import Settings
from billing.yookassa import (
    GatewayRejected,
    GatewayUnavailable,
    ProviderPayment,
    ProviderPaymentNotFound,
    YooKassaGateway,
)

log = logging.getLogger(__name__)

CREATE_ATTEMPTS = 3
ROW_KEY = "payment_row_key"  # metadata: the payment row's idempotence key (see _check_metadata)


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


async def start_topup(
    sessionmaker: async_sessionmaker[AsyncSession],
    gateway: YooKassaGateway,
    settings: Settings,
    *,
    user_id: int,
    amount: int,
    email: str | None = None,
    description: str | None = None,
) -> TopUpStarted:
    """Commit a pending row with our idempotence key, then create the YooKassa payment.

    A timeout is retried with the same key, so YooKassa creates one payment however many
    times we ask. If it stays unreachable (or rejects us) the row is marked failed.
    """
    async with sessionmaker() as session:
        user = await service.get_user(session, user_id=user_id)
        payment = await service.create_payment(
            session,
            user_id=user_id,
            amount=amount,
            currency=settings.YOOKASSA_CURRENCY,
            description=description,
            idempotence_key=uuid.uuid4().hex,
        )
        await session.commit()
        payment_id, key = payment.id, payment.idempotence_key
    description = description or f"Media Lab: пополнение баланса, заказ {payment_id}"
    metadata = {
        "payment_row_id": str(payment_id),
        "user_id": str(user_id),
        "telegram_id": str(user.telegram_id),
        # The row's random key: row and user ids repeat in a database that starts again,
        # and YooKassa goes on notifying of the old one's payments for a day.
        ROW_KEY: key,
    }
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
                await asyncio.sleep(0.5 * 2**attempt)
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
            await service.mark_payment_failed(
                session, payment_id=payment_id, reason=type(error).__name__
            )
            await session.commit()
        raise TopUpUnavailable(payment_id, str(error))
    async with sessionmaker() as session:
        await service.attach_provider_payment(
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

    if remote.status == PaymentStatus.SUCCEEDED:
        async with one_statement() as session:
            try:
                credited = await service.credit_payment(
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
                fresh = await service.get_user(session, user_id=row.user_id)
                return ReconcileResult(
                    Outcome.ALREADY_CREDITED, balance_after=fresh.balance, **base
                )
            return ReconcileResult(
                Outcome.CREDITED, balance_after=credited.balance_after, detail="credited", **base
            )
    async with sessionmaker() as session:
        if remote.status == PaymentStatus.CANCELED:
            changed = await service.mark_payment_canceled(
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
            await service.mark_payment_waiting(session, payment_id=row.id)
            await session.commit()
            return ReconcileResult(Outcome.WAITING_FOR_CAPTURE, **base)
    return ReconcileResult(Outcome.PENDING, detail=f"YooKassa says {remote.status}", **base)
