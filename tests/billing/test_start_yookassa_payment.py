"""billing.payments.start_yookassa_payment, the one start of a YooKassa payment (the chat's
top-up and plan card, the Mini App): what it refuses writes nothing; a receipt e-mail is
asked for before anything is written; a plan's payment names the plan."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from billing import accounts
from billing.errors import AmountOutOfRange, InvalidAmount
from billing.models import Payment
from billing.payments import ReceiptEmailNeeded, start_yookassa_payment
from billing.plans import PlanNotForSale, PlanNotFound
from billing.yookassa import YooKassaGateway
from tests.billing.test_plans_payment import _user, env, yk

__all__ = ["env", "yk"]  # the fixtures


async def _rows(sm) -> int:
    async with sm() as session:
        return int(await session.scalar(select(func.count()).select_from(Payment)))


async def test_refusals_write_nothing(env) -> None:
    settings, sm, gateway, _ = env
    user_id = await _user(sm)
    start = start_yookassa_payment
    for kwargs, error in (
        ({"amount_rub": settings.TOPUP_MIN_RUB - 1}, AmountOutOfRange),
        ({"amount_rub": settings.TOPUP_MAX_RUB + 1}, AmountOutOfRange),
        ({"amount_rub": True}, InvalidAmount),
        ({}, InvalidAmount),
        ({"amount_rub": 100, "plan_code": "pack10"}, InvalidAmount),
        ({"plan_code": "nope"}, PlanNotFound),
        ({"plan_code": "free"}, PlanNotForSale),
    ):
        with pytest.raises(error):
            await start(sm, gateway, settings, user_id=user_id, **kwargs)
    assert await _rows(sm) == 0


async def test_a_top_up_and_a_plan_start_with_their_amounts(env) -> None:
    settings, sm, gateway, yk = env
    user_id = await _user(sm)
    topup = await start_yookassa_payment(sm, gateway, settings, user_id=user_id, amount_rub=150)
    plan = await start_yookassa_payment(sm, gateway, settings, user_id=user_id, plan_code="pro")
    assert (topup.amount, plan.amount) == (15_000, 19_900)
    metadata = [
        (await yk.payment(x.yookassa_payment_id))["payment"]["metadata"] for x in (topup, plan)
    ]
    assert "plan_id" not in metadata[0] and metadata[1]["plan_id"]
    assert await _rows(sm) == 2
    # The row names the plan too (the books, the operator API's payments list).
    async with sm() as session:
        plan_ids = [(await session.get(Payment, x.payment_id)).plan_id for x in (topup, plan)]
    assert plan_ids == [None, int(metadata[1]["plan_id"])]


async def test_a_receipt_needs_the_email_first(env, db_url) -> None:
    from tests.conftest import make_settings

    settings, sm, gateway, yk = env
    receipts = make_settings(
        db_url,
        **{
            k: getattr(settings, k)
            for k in ("YOOKASSA_SHOP_ID", "YOOKASSA_API_URL", "YOOKASSA_TIMEOUT")
        },
        YOOKASSA_SECRET_KEY=settings.YOOKASSA_SECRET_KEY.get_secret_value(),
        YOOKASSA_RECEIPTS_ENABLED=True,
    )
    gateway = YooKassaGateway(receipts)
    user_id = await _user(sm)
    with pytest.raises(ReceiptEmailNeeded):
        await start_yookassa_payment(sm, gateway, receipts, user_id=user_id, amount_rub=100)
    assert await _rows(sm) == 0
    async with sm() as session:
        await accounts.set_email(session, user_id=user_id, email="me@example.com")
        await session.commit()
    started = await start_yookassa_payment(sm, gateway, receipts, user_id=user_id, amount_rub=100)
    receipt = (await yk.payment(started.yookassa_payment_id))["receipt"]
    assert receipt and "me@example.com" in str(receipt)
