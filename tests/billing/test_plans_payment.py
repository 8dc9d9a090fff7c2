"""A plan bought through YooKassa (real yookassa SDK against the YooKassa emulator): the
payment of the plan's price names the plan in its metadata; the one credit path credits it
once and, in the same transaction, buys the plan from the balance; a plan archived in
between leaves the money on the balance, and the user's message says which happened."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from billing import accounts, plans
from billing.db import make_sessionmaker
from billing.models import LedgerEntry, NoticeKind, Payment, PaymentNotice, UserPlan
from billing.payments import Outcome, reconcile_payment, start_plan_payment
from billing.plans import PlanNotForSale
from billing.yookassa import YooKassaGateway
from sandbox._common import ServerHandle
from sandbox.yookassa import create_app
from sandbox.yookassa_client import YooKassaEmulatorClient
from tests.conftest import make_settings
from texts.plan_texts import plan_payment_text

SHOP, SECRET = "100500", "test_secret_key_for_plans"


@pytest.fixture
async def yk():
    async with ServerHandle(create_app(shop_id=SHOP, secret_key=SECRET)) as server:
        async with YooKassaEmulatorClient(server.url) as client:
            yield client


@pytest.fixture
def env(engine, db_url, yk):
    settings = make_settings(
        db_url,
        YOOKASSA_SHOP_ID=SHOP,
        YOOKASSA_SECRET_KEY=SECRET,
        YOOKASSA_API_URL=yk.api_url,
        YOOKASSA_TIMEOUT=2,
    )
    return settings, make_sessionmaker(engine), YooKassaGateway(settings), yk


async def _user(sm, balance: int = 0) -> int:
    async with sm() as session:
        user, _ = await accounts.get_or_create_user(
            session, telegram_id=777, free_operations=1, language="ru"
        )
        if balance:
            await accounts.adjust(session, user_id=user.id, amount=balance, reason="test")
        await session.commit()
        return user.id


async def _ledger(sm, user_id: int) -> list[tuple[str, int, int]]:
    async with sm() as session:
        rows = await session.execute(
            select(LedgerEntry.kind, LedgerEntry.amount, LedgerEntry.units_delta)
            .where(LedgerEntry.user_id == user_id)
            .order_by(LedgerEntry.id)
        )
        return [tuple(r) for r in rows]


async def test_a_plan_payment_is_credited_once_and_buys_the_plan_in_the_same_transaction(env):
    settings, sm, gateway, client = env
    user_id = await _user(sm)
    started = await start_plan_payment(sm, gateway, settings, user_id=user_id, plan_code="pro")
    [request] = await client.requests("/v3/payments", method="POST")
    body = request["body"]
    assert body["amount"] == {"value": "199.00", "currency": "RUB"}
    assert body["metadata"]["plan_id"] == "2"
    assert "«Про»" in body["description"]

    await client.mark_succeeded(started.yookassa_payment_id)
    results = await asyncio.gather(
        *(reconcile_payment(sm, gateway, payment_id=started.payment_id) for _ in range(5))
    )
    outcomes = sorted(r.outcome for r in results)
    assert outcomes.count(Outcome.CREDITED) == 1
    assert outcomes.count(Outcome.ALREADY_CREDITED) == 4
    credited = next(r for r in results if r.outcome is Outcome.CREDITED)
    note = credited.plan
    assert note is not None and (note.kind, note.plan_code, note.units) == (
        NoticeKind.PLAN_BOUGHT,
        "pro",
        30,
    )
    assert credited.balance_after == 0
    assert plan_payment_text(note, amount=credited.amount, language="ru").startswith(
        "✅ Оплата 199 ₽ получена: подписка «Про» подключена до "
    )

    assert await _ledger(sm, user_id) == [
        ("signup", 0, 0),
        ("topup", 19_900, 0),
        ("plan_purchase", -19_900, 30),
    ]
    async with sm() as session:
        [holding] = (await session.scalars(select(UserPlan))).all()
        assert (holding.plan_id, holding.payment_id, holding.status) == (
            2,
            started.payment_id,
            "active",
        )
        [notice] = (await session.scalars(select(PaymentNotice))).all()
        assert (notice.key, notice.kind, notice.plan_id, notice.holding_id) == (
            f"credited:{started.payment_id}",
            "plan_bought",
            2,
            holding.id,
        )
        user = await accounts.get_user(session, user_id=user_id)
        assert (user.balance, user.free_left) == (0, 1)


async def test_a_plan_archived_before_the_money_came_leaves_the_money_on_the_balance(env):
    settings, sm, gateway, client = env
    user_id = await _user(sm, balance=500)
    started = await start_plan_payment(sm, gateway, settings, user_id=user_id, plan_code="pack10")
    async with sm() as session:
        await plans.archive_plan(session, "pack10")
        await session.commit()
    await client.mark_succeeded(started.yookassa_payment_id)
    result = await reconcile_payment(sm, gateway, payment_id=started.payment_id)
    assert result.outcome is Outcome.CREDITED
    assert result.plan is not None
    assert (result.plan.kind, result.plan.reason) == (NoticeKind.PLAN_NOT_BOUGHT, "archived")
    assert result.balance_after == 8_500
    text = plan_payment_text(result.plan, amount=result.amount, language="en")
    assert "could not be turned on: it is no longer offered" in text
    assert "The money stays on your balance: 85 ₽" in text
    assert await _ledger(sm, user_id) == [
        ("signup", 0, 0),
        ("adjustment", 500, 0),
        ("topup", 8_000, 0),
    ]
    async with sm() as session:
        assert (await session.scalars(select(UserPlan))).all() == []
        [notice] = (await session.scalars(select(PaymentNotice))).all()
        assert (notice.kind, notice.reason, notice.balance_after) == (
            "plan_not_bought",
            "archived",
            8_500,
        )


async def test_a_price_raised_past_the_payment_keeps_the_money_and_says_why(env):
    settings, sm, gateway, client = env
    user_id = await _user(sm)
    started = await start_plan_payment(sm, gateway, settings, user_id=user_id, plan_code="pro")
    async with sm() as session:
        await plans.edit_plan(session, "pro", price=24_900)
        await session.commit()
    await client.mark_succeeded(started.yookassa_payment_id)
    result = await reconcile_payment(sm, gateway, payment_id=started.payment_id)
    assert (result.plan.kind, result.plan.reason, result.balance_after) == (
        NoticeKind.PLAN_NOT_BOUGHT,
        "no_money",
        19_900,
    )


async def test_paying_for_a_second_subscription_schedules_it_and_keeps_the_money(env):
    settings, sm, gateway, client = env
    user_id = await _user(sm, balance=19_900)
    async with sm() as session:
        await plans.buy_plan_from_balance(
            session, user_id=user_id, plan_code="pro", request_key="t:1"
        )
        await plans.add_plan(
            session,
            code="max",
            kind="subscription",
            name_ru="Макс",
            name_en="Max",
            price=49_900,
            period="month",
            units=100,
        )
        await session.commit()
    started = await start_plan_payment(sm, gateway, settings, user_id=user_id, plan_code="max")
    await client.mark_succeeded(started.yookassa_payment_id)
    result = await reconcile_payment(sm, gateway, payment_id=started.payment_id)
    assert (result.plan.kind, result.plan.reason, result.balance_after) == (
        NoticeKind.PLAN_SCHEDULED,
        "scheduled",
        49_900,
    )
    async with sm() as session:
        holding = await session.scalar(select(UserPlan))
        assert holding.next_plan_id == result.plan.plan_id


async def test_an_archived_or_unknown_plan_starts_no_payment(env):
    settings, sm, gateway, client = env
    user_id = await _user(sm)
    async with sm() as session:
        await plans.archive_plan(session, "pack10")
        await session.commit()
    with pytest.raises(PlanNotForSale):
        await start_plan_payment(sm, gateway, settings, user_id=user_id, plan_code="pack10")
    with pytest.raises(PlanNotForSale):
        await start_plan_payment(sm, gateway, settings, user_id=user_id, plan_code="free")
    with pytest.raises(plans.PlanNotFound):
        await start_plan_payment(sm, gateway, settings, user_id=user_id, plan_code="nope")
    async with sm() as session:
        assert (await session.scalars(select(Payment))).all() == []
    assert await client.requests("/v3/payments", method="POST") == []


@pytest.mark.parametrize("archived", [False, True])
async def test_the_credit_and_the_purchase_share_one_transaction_on_both_databases(
    sessionmaker, archived
):
    """billing-level, without the emulator: credit_payment (its message left to the plan) and
    buy_after_payment in one session; a refused purchase leaves the credit standing."""
    from billing import payments

    async with sessionmaker() as session:
        user, _ = await accounts.get_or_create_user(session, telegram_id=4242, free_operations=0)
        payment = await payments.create_payment(
            session, user_id=user.id, amount=8_000, currency="RUB"
        )
        if archived:
            await plans.archive_plan(session, "pack10")
        await session.commit()
    async with sessionmaker() as session:
        credited = await payments.credit_payment(
            session, payment_id=payment.id, amount=8_000, currency="RUB", notice=False
        )
        assert credited is not None
        note = await plans.buy_after_payment(
            session, user_id=user.id, plan_id=3, payment_id=payment.id, amount=8_000
        )
        await session.commit()
    assert note.kind is (NoticeKind.PLAN_NOT_BOUGHT if archived else NoticeKind.PLAN_BOUGHT)
    assert note.balance_after == (8_000 if archived else 0)
    async with sessionmaker() as session:
        holdings = (await session.scalars(select(UserPlan))).all()
        [notice] = (await session.scalars(select(PaymentNotice))).all()
        balance = (await accounts.get_user(session, user_id=user.id)).balance
    assert len(holdings) == (0 if archived else 1)
    assert notice.key == f"credited:{payment.id}" and notice.kind == note.kind.value
    assert balance == note.balance_after
    # The credit is once-only: a second one changes nothing and buys nothing.
    async with sessionmaker() as session:
        again = await payments.credit_payment(
            session, payment_id=payment.id, amount=8_000, currency="RUB", notice=False
        )
        await session.commit()
    assert again is None
