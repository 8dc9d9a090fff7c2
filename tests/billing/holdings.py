"""Holdings for tests of what a user sees: a plan held with so many units left, recorded in
the ledger (a plan_purchase entry of its units) so the audit after the test stays clean."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import ledger
from billing.models import HoldingStatus, LedgerKind, Plan, UserPlan, utcnow


async def plan_id(session: AsyncSession, code: str) -> int:
    return int(await session.scalar(select(Plan.id).where(Plan.code == code)))


async def give_holding(
    session: AsyncSession,
    user_id: int,
    code: str,
    *,
    units_left: int,
    ends_in: timedelta | None = timedelta(days=30),
    auto_renew: bool = True,
) -> int:
    """A holding of plan ``code`` with ``units_left`` units, recorded as a free purchase (a
    plan_purchase entry of its units), so the audit sees its counter's history."""
    plan = (await session.execute(select(Plan).where(Plan.code == code))).scalar_one()
    now = utcnow()
    holding_id = await session.scalar(
        insert(UserPlan)
        .values(
            user_id=user_id,
            plan_id=plan.id,
            kind=plan.kind,
            status=HoldingStatus.ACTIVE.value,
            units_left=units_left,
            units_per_period=plan.units,
            price=plan.price,
            period=plan.period,
            period_no=1,
            period_start=now,
            ends_at=now + ends_in if ends_in is not None else None,
            auto_renew=auto_renew,
        )
        .returning(UserPlan.id)
    )
    await ledger.run(
        session,
        [
            ledger.Step("moved", lambda _: ledger.balance_step(user_id)),
            ledger.Step(
                "entry",
                lambda p: ledger.entry(
                    p["moved"],
                    kind=LedgerKind.PLAN_PURCHASE,
                    amount=0,
                    free_delta=0,
                    units_delta=units_left,
                    units_after=units_left,
                    holding_id=holding_id,
                    plan_id=plan.id,
                    key=f"test-holding:{holding_id}",
                ),
            ),
        ],
    )
    return int(holding_id)
