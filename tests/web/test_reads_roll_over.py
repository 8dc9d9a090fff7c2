"""The operator API's reads and the Mini App's show what is due as done, the same way: a
subscription period over is renewed (or ended), a package past its expiry is gone, and the
roll-over happens once, whichever reads first."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from billing import accounts, plans
from billing.models import UserPlan, utcnow
from tests.web.conftest import Stack, StackFactory
from tests.web.miniapp import caller
from tests.web.test_operator_api import READ, TOKENS, call


async def _holding_user(stack: Stack, telegram_id: int, money: int) -> int:
    """A user with a Pro subscription and a package, both past their end."""
    user_id, _ = await stack.new_user(telegram_id)
    async with stack.sessionmaker() as session:
        await accounts.adjust(session, user_id=user_id, reason="test", amount=money)
        for code in ("pro", "pack10"):
            await plans.buy_plan_from_balance(
                session, stack.settings, user_id=user_id, plan_code=code, request_key=code
            )
        await session.execute(
            update(UserPlan)
            .where(UserPlan.user_id == user_id)
            .values(ends_at=utcnow() - timedelta(minutes=1))
        )
        await session.commit()
    return user_id


async def test_the_operator_api_reads_a_period_over_as_renewed_once(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(API_TOKENS=TOKENS)
    user_id = await _holding_user(stack, 7301, 50_000)
    before = await stack.balance(user_id)
    status, limits, _ = await call(stack, "GET", "/users/7301/limits", headers=READ)
    assert status == 200, limits
    sub = limits["subscription"]
    assert (sub["plan"], sub["units_left"], sub["due"]) == ("pro", 30, False)
    assert limits["packages"] == [] and limits["package_units_left"] == 0  # expired
    status, balance, _ = await call(stack, "GET", "/users/7301/balance", headers=READ)
    assert status == 200 and balance["balance_kopecks"] == before - 19_900  # renewed once
    for path in ("limits", "balance", "features"):
        assert (await call(stack, "GET", f"/users/7301/{path}", headers=READ))[0] == 200
    assert await stack.ledger_count("renewal") == 1
    # The Mini App reads the same state, and rolls nothing over again.
    status, body = await caller(stack, 7301).get("/app/api/balance")
    assert status == 200 and body["balance"] == before - 19_900
    assert body["subscription"]["units_left"] == 30 and body["packages"] == []
    assert await stack.ledger_count("renewal") == 1
    # The user was told of the renewal in the chat, once.
    told = [t for t in await stack.sent_texts(7301) if "продлена" in t]
    assert len(told) == 1, await stack.sent_texts(7301)


async def test_a_period_over_with_no_money_reads_as_ended_in_both(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(API_TOKENS=TOKENS)
    user_id = await _holding_user(stack, 7302, 19_900 + 8_000)  # nothing left to renew with
    status, limits, _ = await call(stack, "GET", "/users/7302/limits", headers=READ)
    assert status == 200 and limits["subscription"] is None and limits["packages"] == []
    status, body = await caller(stack, 7302).get("/app/api/balance")
    assert status == 200 and body["subscription"] is None and body["packages"] == []
    assert await stack.ledger_count("renewal") == 0
    assert await stack.ledger_count("plan_end") == 2
    assert await stack.balance(user_id) == 0
