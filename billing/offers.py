"""The plans offer under a result (seed 001's "after every answer, the upgrade"), kept to once
a day per user.

Not money: ``users.offer_shown_at`` only says when the offer was last shown. Claimed with one
conditional UPDATE, so two results finishing at once show it once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing.models import HoldingStatus, PlanKind, User, UserPlan, utcnow

OFFER_EVERY = timedelta(days=1)
OFFER_FREE_LEFT = 1  # offered when this many free operations or fewer are left


async def claim_plans_offer(
    session: AsyncSession, *, user_id: int, now: datetime | None = None
) -> int | None:
    """Mark the offer shown now and return the user's free operations left, if it is due:
    the user is on the default plan (no active subscription) with no package units left,
    has at most ``OFFER_FREE_LEFT`` free operations, and was not offered in the last day.
    None otherwise (nothing written). The caller commits."""
    now = now or utcnow()
    holding = exists().where(
        UserPlan.user_id == User.id,
        UserPlan.status == HoldingStatus.ACTIVE.value,
        or_(UserPlan.kind == PlanKind.SUBSCRIPTION.value, UserPlan.units_left > 0),
    )
    claimed = await session.execute(
        update(User)
        .where(
            User.id == user_id,
            User.free_operations_left <= OFFER_FREE_LEFT,
            or_(User.offer_shown_at.is_(None), User.offer_shown_at <= now - OFFER_EVERY),
            ~holding,
        )
        .values(offer_shown_at=now)
        .returning(User.free_operations_left)
        .execution_options(synchronize_session=False)
    )
    return claimed.scalar_one_or_none()


async def offer_shown_at(session: AsyncSession, *, user_id: int) -> datetime | None:
    return await session.scalar(select(User.offer_shown_at).where(User.id == user_id))
