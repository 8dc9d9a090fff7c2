"""A plan paid in Telegram Stars, in billing (PostgreSQL and SQLite): its price in ⭐ rounded
up, the pending row naming the plan, the pre-checkout refusing a plan archived meanwhile,
the credit once per charge id buying the plan once (the same charge at once too), a plan
archived after the pre-checkout leaving the money on the balance, and the invoice paid again
credited as a top-up only."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from billing import plans, stars
from billing.errors import BillingError
from billing.models import LedgerEntry, NoticeKind, PaymentNotice, UserPlan
from tests.billing.helpers import new_user
from tests.billing.test_stars_payments import SETTINGS, _balance, _credit

PRO_STARS = 133  # 199 ₽ at 1.50 ₽ a ⭐: 132.67, rounded up
PRO_CREDIT = 19_950  # what 133 ⭐ credit: the price and 50 kopecks over it


async def _plan_invoice(sessionmaker, user_id: int, code: str = "pro") -> stars.StarsInvoice:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        invoice = await stars.start_plan_purchase(
            session, SETTINGS, user_id=user_id, plan_code=code
        )
        await session.commit()
    return invoice


async def _archive(sessionmaker, code: str = "pro") -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        await plans.archive_plan(session, code)
        await session.commit()


async def _rows(sessionmaker, model, user_id: int) -> list:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        query = select(model).where(model.user_id == user_id).order_by(model.id)
        return list((await session.scalars(query)).all())


async def test_a_plans_price_in_stars_is_rounded_up_and_its_row_names_the_plan(
    sessionmaker,
) -> None:
    user_id = await new_user(sessionmaker)
    invoice = await _plan_invoice(sessionmaker, user_id)
    assert (invoice.stars, invoice.amount) == (PRO_STARS, PRO_CREDIT)
    assert invoice.plan_id == 2
    assert stars.plan_stars(SETTINGS, 15_000) == 100  # an exact price is not rounded
    assert stars.plan_stars(SETTINGS, 1_500_001) is None  # past 10000 ⭐: not offered
    async with sessionmaker() as session:
        with pytest.raises(plans.PlanNotForSale):
            await stars.start_plan_purchase(session, SETTINGS, user_id=user_id, plan_code="free")
        await plans.edit_plan(session, "pack10", price=1_500_100)
        with pytest.raises(BillingError):
            await stars.start_plan_purchase(session, SETTINGS, user_id=user_id, plan_code="pack10")


async def test_a_plan_paid_in_stars_is_credited_and_bought_once_per_charge(sessionmaker) -> None:
    user_id = await new_user(sessionmaker)
    invoice = await _plan_invoice(sessionmaker, user_id)
    results = await asyncio.gather(*(_credit(sessionmaker, invoice, "ch-P") for _ in range(6)))
    outcomes = [r.outcome for r in results]
    assert outcomes.count(stars.StarsOutcome.CREDITED) == 1, outcomes
    credited = next(r for r in results if r.outcome is stars.StarsOutcome.CREDITED)
    assert credited.plan is not None
    assert (credited.plan.kind, credited.plan.plan_code) == (NoticeKind.PLAN_BOUGHT, "pro")
    assert credited.balance_after == PRO_CREDIT - 19_900 == await _balance(sessionmaker, user_id)

    entries = await _rows(sessionmaker, LedgerEntry, user_id)
    assert [(e.kind, e.amount) for e in entries] == [
        ("topup", PRO_CREDIT),
        ("plan_purchase", -19_900),
    ]
    [holding] = await _rows(sessionmaker, UserPlan, user_id)
    assert (holding.plan_id, holding.payment_id, holding.status) == (
        2,
        invoice.payment_id,
        "active",
    )
    [notice] = await _rows(sessionmaker, PaymentNotice, user_id)
    assert (notice.key, notice.kind) == (f"credited:{invoice.payment_id}", "plan_bought")


async def test_the_pre_checkout_refuses_a_plan_archived_after_the_invoice(sessionmaker) -> None:
    user_id = await new_user(sessionmaker)
    invoice = await _plan_invoice(sessionmaker, user_id)

    async def check() -> stars.StarsRefused | None:
        async with sessionmaker() as session:
            return await stars.check_pre_checkout(
                session,
                telegram_id=1001,
                payload=invoice.payload,
                currency="XTR",
                total_amount=PRO_STARS,
            )

    assert await check() is None
    await _archive(sessionmaker)
    assert await check() is stars.StarsRefused.PLAN


async def test_a_plan_archived_after_the_pre_checkout_leaves_the_money_on_the_balance(
    sessionmaker,
) -> None:
    user_id = await new_user(sessionmaker)
    invoice = await _plan_invoice(sessionmaker, user_id)
    await _archive(sessionmaker)  # Telegram had approved the payment already
    credited = await _credit(sessionmaker, invoice, "ch-late")
    assert credited.outcome is stars.StarsOutcome.CREDITED and credited.plan is not None
    assert (credited.plan.kind, credited.plan.reason) == (NoticeKind.PLAN_NOT_BOUGHT, "archived")
    assert credited.balance_after == PRO_CREDIT == await _balance(sessionmaker, user_id)
    assert await _rows(sessionmaker, UserPlan, user_id) == []


async def test_a_plans_invoice_paid_again_is_a_top_up_not_a_second_plan(sessionmaker) -> None:
    user_id = await new_user(sessionmaker)
    invoice = await _plan_invoice(sessionmaker, user_id, "pack10")
    first = await _credit(sessionmaker, invoice, "ch-1")
    second = await _credit(sessionmaker, invoice, "ch-2")
    assert first.plan is not None and first.plan.kind is NoticeKind.PLAN_BOUGHT
    assert second.repeat and second.plan is None
    # 80 ₽ at 1.50 ₽ a ⭐: 54 ⭐ credit 81 ₽ each; the package took 80 ₽ once.
    assert await _balance(sessionmaker, user_id) == 2 * 8_100 - 8_000
    assert len(await _rows(sessionmaker, UserPlan, user_id)) == 1
