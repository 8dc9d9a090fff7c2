"""The outbox of the user's payment messages: credited, canceled, refunded — and their plan
messages (:mod:`billing.plans`: a plan paid through YooKassa, renewed, changed, ended, a
package expired), which name a plan and a holding instead of (or besides) a payment.

The billing service writes a :class:`~billing.models.PaymentNotice` in the same transaction
as the change it tells about (``credit_payment``, ``mark_payment_canceled``,
``record_payment_refund``), so a committed change always has its message on record.

Who sends it:

- the web server (or the bot, for "Проверить оплату") right after the commit, in the
  background; when Telegram took it (or the user blocked the bot) it marks the notice done
  with a conditional update (``... WHERE done_at IS NULL``);
- a worker's maintenance pass (:mod:`workers.notices`), for a notice still not done
  PAYMENT_NOTICE_GRACE_SECONDS after it was written: it claims the notice with a
  conditional update first (two passes never both send it), sends it once, and marks it
  done — or, after a transient failure, releases the claim so a later pass tries again.

The grace period is the web server's own time to send: it stops trying well before it ends
(see ``web.notify.UserNotifier``), so normally each message is sent exactly once. A claim
whose pass died is taken over one grace period later: at least once.

Nothing here touches a balance or the ledger.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing.db import one_statement_sessions
from billing.models import (
    NoticeKind,
    NoticeOutcome,
    PaymentNotice,
    Plan,
    User,
    UserPlan,
    utcnow,
)

log = logging.getLogger(__name__)

ERROR_LENGTH = 500


def credited_key(payment_id: int) -> str:
    return f"{NoticeKind.CREDITED.value}:{payment_id}"


def canceled_key(payment_id: int) -> str:
    return f"{NoticeKind.CANCELED.value}:{payment_id}"


def refunded_key(refund_id: str) -> str:
    return f"{NoticeKind.REFUNDED.value}:{refund_id}"


async def add(
    session: AsyncSession,
    *,
    key: str,
    kind: NoticeKind,
    user_id: int,
    amount: int,
    payment_id: int | None = None,
    balance_after: int | None = None,
    reason: str | None = None,
    plan_id: int | None = None,
    holding_id: int | None = None,
) -> None:
    """Record a message to send, in the caller's transaction (the money change's own).
    A plan's message (billing.plans) names its plan and holding, and a payment only when one
    bought it."""
    session.add(
        PaymentNotice(
            key=key,
            kind=kind.value,
            payment_id=payment_id,
            user_id=user_id,
            amount=amount,
            balance_after=balance_after,
            reason=(reason or "")[:64] or None,
            plan_id=plan_id,
            holding_id=holding_id,
            created_at=utcnow(),
            attempts=0,
        )
    )
    await session.flush()


async def mark_done(
    session: AsyncSession,
    *,
    outcome: NoticeOutcome,
    key: str | None = None,
    notice_id: int | None = None,
    error: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Mark a notice sent (or never to be sent), once; False if it was done already."""
    if (key is None) == (notice_id is None):
        raise ValueError("give the notice's key or its id")
    match = PaymentNotice.key == key if key is not None else PaymentNotice.id == notice_id
    values: dict[str, object] = {"done_at": now or utcnow(), "outcome": outcome.value}
    if error is not None:
        values["last_error"] = error[:ERROR_LENGTH]
    result = await session.execute(
        update(PaymentNotice)
        .where(match, PaymentNotice.done_at.is_(None))
        .values(**values)
        .returning(PaymentNotice.id)
        # No notice is loaded as an object here: nothing in the session to keep in step.
        .execution_options(synchronize_session=False)
    )
    return result.scalar_one_or_none() is not None


async def mark_done_safely(
    sessionmaker: async_sessionmaker[AsyncSession],
    key: str,
    outcome: NoticeOutcome,
    *,
    error: str | None = None,
) -> bool:
    """``mark_done`` in a transaction of its own, for the sender that just sent the message.

    A failure is logged, not raised: the message then goes out once more from the
    maintenance pass — a duplicate, never a lost message.
    """
    try:
        # One conditional UPDATE: committed by itself, no BEGIN and COMMIT round trips.
        async with one_statement_sessions(sessionmaker)() as session:
            changed = await mark_done(session, key=key, outcome=outcome, error=error)
            await session.commit()
            return changed
    except Exception as exc:  # noqa: BLE001 - the database may be down; the outbox copes
        log.warning("notice %s not marked %s: %s", key, outcome.value, exc)
        return False


@dataclass(frozen=True)
class ClaimedNotice:
    id: int
    key: str
    kind: NoticeKind
    payment_id: int | None
    user_id: int
    telegram_id: int
    language: str | None
    amount: int
    balance_after: int | None
    reason: str | None
    attempts: int  # including this one
    created_at: datetime
    claimed_at: datetime
    plan: PlanFacts | None = None  # a plan's message: what its text names


@dataclass(frozen=True)
class PlanFacts:
    """What a plan's message says about the plan and the holding, read when it is sent."""

    name_ru: str
    name_en: str
    kind: str  # the plan's: subscription | package
    units: int  # the holding's units per period (a package's units)
    ends_at: datetime | None  # the holding's period end / expiry

    def name(self, language: str | None) -> str:
        return self.name_en if (language or "").startswith("en") else self.name_ru


async def plan_facts(
    session: AsyncSession, *, plan_id: int | None, holding_id: int | None
) -> PlanFacts | None:
    if plan_id is None:
        return None
    plan = (
        await session.execute(
            select(Plan.name_ru, Plan.name_en, Plan.kind, Plan.units).where(Plan.id == plan_id)
        )
    ).one_or_none()
    if plan is None:
        return None
    units, ends_at = plan.units, None
    if holding_id is not None:
        holding = (
            await session.execute(
                select(UserPlan.units_per_period, UserPlan.ends_at).where(
                    UserPlan.id == holding_id
                )
            )
        ).one_or_none()
        if holding is not None:
            units, ends_at = holding.units_per_period, holding.ends_at
    if ends_at is not None and ends_at.tzinfo is None:
        ends_at = ends_at.replace(tzinfo=UTC)  # SQLite gives UTC without the zone
    return PlanFacts(plan.name_ru, plan.name_en, plan.kind, units, ends_at)


def _due(cutoff: datetime) -> list:
    """Not done, written before the cutoff, and not claimed since it (a claim older than the
    grace period belongs to a pass that died)."""
    return [
        PaymentNotice.done_at.is_(None),
        PaymentNotice.created_at <= cutoff,
        or_(PaymentNotice.claimed_at.is_(None), PaymentNotice.claimed_at <= cutoff),
    ]


async def due(
    session: AsyncSession, *, now: datetime, grace: timedelta, limit: int = 50
) -> list[int]:
    """Ids of the notices a pass may claim now: the least tried first, then the oldest."""
    rows = await session.scalars(
        select(PaymentNotice.id)
        .where(*_due(now - grace))
        .order_by(PaymentNotice.attempts, PaymentNotice.id)
        .limit(limit)
    )
    return list(rows)


async def claim(
    session: AsyncSession, notice_id: int, *, now: datetime, grace: timedelta
) -> ClaimedNotice | None:
    """Take a due notice for sending: a conditional update, so of two passes one wins.

    None when it is no longer due (sent meanwhile, or another pass claimed it). The caller
    commits the claim before it sends.
    """
    return await _claim(session, [PaymentNotice.id == notice_id, *_due(now - grace)], now)


async def claim_fresh(
    session: AsyncSession, key: str, *, now: datetime, grace: timedelta
) -> ClaimedNotice | None:
    """Take a notice just written (by the renewal pass, after its commit) for sending at
    once: not done, and not claimed by anyone within the grace period. As :func:`claim`, of
    two senders one wins; a maintenance pass sends it only if this one never marks it."""
    cutoff = now - grace
    return await _claim(
        session,
        [
            PaymentNotice.key == key,
            PaymentNotice.done_at.is_(None),
            or_(PaymentNotice.claimed_at.is_(None), PaymentNotice.claimed_at <= cutoff),
        ],
        now,
    )


async def _claim(session: AsyncSession, conditions: list, now: datetime) -> ClaimedNotice | None:
    row = (
        await session.execute(
            update(PaymentNotice)
            .where(*conditions)
            .values(claimed_at=now, attempts=PaymentNotice.attempts + 1)
            .returning(
                PaymentNotice.id,
                PaymentNotice.key,
                PaymentNotice.kind,
                PaymentNotice.payment_id,
                PaymentNotice.user_id,
                PaymentNotice.amount,
                PaymentNotice.balance_after,
                PaymentNotice.reason,
                PaymentNotice.attempts,
                PaymentNotice.created_at,
                PaymentNotice.plan_id,
                PaymentNotice.holding_id,
            )
        )
    ).one_or_none()
    if row is None:
        return None
    user = (
        await session.execute(
            select(User.telegram_id, User.language).where(User.id == row.user_id)
        )
    ).one()
    return ClaimedNotice(
        id=row.id,
        key=row.key,
        kind=NoticeKind(row.kind),
        payment_id=row.payment_id,
        user_id=row.user_id,
        telegram_id=user.telegram_id,
        language=user.language,
        amount=row.amount,
        balance_after=row.balance_after,
        reason=row.reason,
        attempts=row.attempts,
        created_at=row.created_at,
        claimed_at=now,
        plan=await plan_facts(session, plan_id=row.plan_id, holding_id=row.holding_id),
    )


async def release(
    session: AsyncSession, notice_id: int, *, error: str, claimed_at: datetime | None = None
) -> bool:
    """After a transient failure: record the error and leave the claim in place, so the notice
    is due again one grace period after this try (a pause between tries, however many
    workers run passes). Only the pass that holds the claim (``claimed_at``, when given)
    changes anything."""
    conditions = [PaymentNotice.id == notice_id, PaymentNotice.done_at.is_(None)]
    if claimed_at is not None:
        conditions.append(PaymentNotice.claimed_at == claimed_at)
    result = await session.execute(
        update(PaymentNotice)
        .where(*conditions)
        .values(last_error=error[:ERROR_LENGTH])
        .returning(PaymentNotice.id)
    )
    return result.scalar_one_or_none() is not None
