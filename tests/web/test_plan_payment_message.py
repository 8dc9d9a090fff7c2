"""A plan paid through YooKassa: the web server's one message after the notification says
the plan is on (or, when it could not be bought, that the money is on the balance), and it
is marked sent so no maintenance pass sends it again."""

from __future__ import annotations

from sqlalchemy import select

from billing import plans
from billing.models import PaymentNotice, UserPlan
from billing.payments import start_plan_payment
from tests.web.conftest import Stack


async def _notice(stack: Stack) -> PaymentNotice:
    async with stack.sessionmaker() as session:
        [notice] = (await session.scalars(select(PaymentNotice))).all()
        return notice


async def test_the_message_of_a_plan_payment_says_the_plan_is_on(stack: Stack) -> None:
    user_id, _ = await stack.new_user(9801)
    started = await start_plan_payment(
        stack.sessionmaker, stack.gateway, stack.settings, user_id=user_id, plan_code="pack10"
    )
    await stack.yk.mark_succeeded(started.yookassa_payment_id)
    assert (await stack.yk.notify(started.yookassa_payment_id))["status"] == 200
    await stack.settle()
    [text] = await stack.sent_texts(9801)
    assert text.startswith("✅ Оплата 80 ₽ получена: пакет «Пакет 10 операций» подключён, ")
    assert "10 операций до " in text and "На балансе 0 ₽." in text
    assert await stack.balance(user_id) == 0
    async with stack.sessionmaker() as session:
        holding = await session.scalar(select(UserPlan).where(UserPlan.user_id == user_id))
    assert (holding.units_left, holding.payment_id) == (10, started.payment_id)
    notice = await _notice(stack)
    assert (notice.kind, notice.outcome) == ("plan_bought", "sent")
    # Delivered again: nothing more.
    assert (await stack.yk.notify(started.yookassa_payment_id))["status"] == 200
    await stack.settle()
    assert len(await stack.sent_texts(9801)) == 1


async def test_a_plan_archived_meanwhile_is_said_and_the_money_stays(stack: Stack) -> None:
    user_id, _ = await stack.new_user(9802, language="en")
    started = await start_plan_payment(
        stack.sessionmaker, stack.gateway, stack.settings, user_id=user_id, plan_code="pro"
    )
    async with stack.sessionmaker() as session:
        await plans.archive_plan(session, "pro")
        await session.commit()
    await stack.yk.mark_succeeded(started.yookassa_payment_id)
    assert (await stack.yk.notify(started.yookassa_payment_id))["status"] == 200
    await stack.settle()
    [text] = await stack.sent_texts(9802)
    assert "the “Pro” plan could not be turned on: it is no longer offered." in text
    assert await stack.balance(user_id) == 19_900
    assert (await _notice(stack)).outcome == "sent"
