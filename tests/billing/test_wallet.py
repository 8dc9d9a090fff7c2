"""billing.wallet: what a user holds, the quote of the next charge (it must name exactly the
source, holding and price the charge then uses), and the history, newest first."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from billing import accounts, operations, plans, wallet
from billing.db import make_engine, make_sessionmaker
from billing.errors import InsufficientFunds, OperationLocked
from billing.models import (
    Funding,
    Plan,
)
from tests.billing.helpers import new_user
from tests.billing.holdings import give_holding, plan_id
from tests.conftest import assert_audit_clean, make_settings

SOURCES = ("free", "subscription", "package", "balance")


async def test_wallet_reads_the_balance_free_operations_subscription_and_packages(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    settings = make_settings("sqlite://")
    user = await new_user(sessionmaker, free=2, balance=5000)
    async with sessionmaker() as session:
        sub = await give_holding(session, user, "pro", units_left=18)
        late = await give_holding(session, user, "pack10", units_left=4, ends_in=None)
        soon = await give_holding(session, user, "pack10", units_left=9, ends_in=timedelta(days=2))
        await session.commit()
        held = await wallet.wallet(session, settings, user_id=user)
    assert (held.balance, held.free_left) == (5000, 2)
    assert held.subscription is not None and held.subscription.id == sub
    assert held.subscription.units_left == 18 and held.subscription.plan.code == "pro"
    # Oldest expiry first, never-expiring last: the order the charge takes packages in.
    assert [p.id for p in held.packages] == [soon, late]
    assert held.discount_percent == 10  # pro's
    assert held.allowed is None and held.allows("generate")
    assert held.confirm_charges is False and not held.on_default_plan


async def test_the_confirmation_setting_follows_the_user_else_the_operators_default(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    user = await new_user(sessionmaker)
    async with sessionmaker() as session:
        for default, chosen, expected in (
            (False, None, False),
            (True, None, True),
            (True, False, False),
            (False, True, True),
        ):
            settings = make_settings("sqlite://", CONFIRM_CHARGES_DEFAULT=default)
            await accounts.set_confirm_charges(session, user_id=user, on=chosen)
            assert await wallet.wants_confirmation(session, settings, user_id=user) is expected
            held = await wallet.wallet(session, settings, user_id=user)
            assert held.confirm_charges is expected
        await session.rollback()


async def test_a_type_only_a_plan_unlocks_is_locked_on_the_default_plan(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    settings = make_settings("sqlite://")
    user = await new_user(sessionmaker, free=3)
    async with sessionmaker() as session:
        free, pro = await plan_id(session, "free"), await plan_id(session, "pro")
        await session.execute(
            Plan.__table__.update()
            .where(Plan.id == free)
            .values(unlocks=["upscale", "edit", "add_text"])
        )
        await session.commit()
        assert await wallet.allowed_types(session, user_id=user) == {"upscale", "edit", "add_text"}
        quote = await wallet.quote(session, settings, user_id=user, op_type="retouch")
        assert quote.locked and not quote.covered
        unlocking = await wallet.plans_unlocking(session, "retouch")
        assert [p.code for p in unlocking] == ["pro", "pack10"]  # both unlock every type
        await give_holding(session, user, "pro", units_left=30)
        await session.commit()
        assert await wallet.allowed_types(session, user_id=user) is None
        quote = await wallet.quote(session, settings, user_id=user, op_type="retouch")
        assert quote.source is Funding.FREE and not quote.locked
        assert pro


# -- the quote and the charge agree -----------------------------------------------------------

states = st.fixed_dictionaries(
    {
        "free": st.integers(0, 1),
        "balance": st.sampled_from([0, 899, 900, 1000, 1999, 2000, 5000, 30000]),
        "sub": st.one_of(
            st.none(),
            st.tuples(st.integers(0, 3), st.sampled_from(["past", "future"])),
        ),
        "packs": st.lists(
            st.tuples(st.integers(0, 3), st.sampled_from(["past", "soon", "later", "never"])),
            max_size=3,
        ),
        "order": st.permutations(SOURCES),
        "op": st.sampled_from(["upscale", "generate", "add_text"]),
        "locked": st.booleans(),
    }
)
_ENDS = {
    "past": timedelta(minutes=-5),
    "soon": timedelta(days=1),
    "later": timedelta(days=20),
    "future": timedelta(days=30),
    "never": None,
}


async def _agree(url: str, engine: AsyncEngine, state: dict, telegram_id: int) -> None:
    settings = make_settings(
        url, SPENDING_ORDER=",".join(state["order"]), OPERATION_UNITS="generate=2"
    )
    sm = make_sessionmaker(engine)
    user = await new_user(sm, telegram_id, free=state["free"], balance=state["balance"])
    async with sm() as session:
        if state["sub"] is not None:
            units, when = state["sub"]
            await give_holding(session, user, "pro", units_left=units, ends_in=_ENDS[when])
        for units, when in state["packs"]:
            await give_holding(session, user, "pack10", units_left=units, ends_in=_ENDS[when])
        await session.commit()
    async with sm() as session:  # what is due first, as the screens and the charge do
        await plans.roll_over(session, settings, user_id=user)
        await session.commit()
    async with sm() as session:
        # Rolled back with the charge: the default plan unlocks upscale only (pack10 and
        # pro unlock every type).
        if state["locked"]:
            await session.execute(
                Plan.__table__.update().where(Plan.is_default).values(unlocks=["upscale"])
            )
        held = await wallet.wallet(session, settings, user_id=user)
        quote = wallet.quote_from(held, settings, state["op"])
        try:
            charge = await operations.charge(session, settings, user_id=user, op_type=state["op"])
        except OperationLocked:
            assert quote.locked, (state, quote)
            return
        except InsufficientFunds as exc:
            assert not quote.covered and not quote.locked, (state, quote)
            assert exc.price == quote.price
            return
        finally:
            await session.rollback()
        assert quote.covered, (state, quote, charge)
        assert charge.funding == quote.source, (state, quote, charge)
        assert charge.holding_id == quote.holding_id, (state, quote, charge)
        assert charge.units == quote.units
        if quote.source is Funding.BALANCE:
            assert charge.price == quote.takes and charge.balance_after == quote.left
        else:
            assert charge.price == 0
        if quote.source is Funding.FREE:
            assert charge.free_after == quote.left
        if quote.source in (Funding.SUBSCRIPTION, Funding.PACKAGE):
            assert charge.units_after == quote.left
    await assert_audit_clean(engine)


_telegram_ids = itertools.count(500_000)


@pytest.fixture
def agree(any_db_url: str) -> Iterator[Callable[[dict], None]]:
    """``agree(state)``: one example, on one event loop and engine for all the test's examples
    (an engine per example compiled every statement again: most of the test's time)."""
    loop = asyncio.new_event_loop()
    engine = make_engine(any_db_url, pool_size=2)
    try:
        yield lambda state: loop.run_until_complete(
            _agree(any_db_url, engine, state, next(_telegram_ids))
        )
    finally:
        loop.run_until_complete(engine.dispose())
        loop.close()


# The fast tier tries a few states; the slow tier (make test, CI) the full 60.
@hsettings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(state=states)
def test_the_quote_names_the_source_holding_and_price_the_charge_then_uses(
    agree: Callable[[dict], None], state: dict
) -> None:
    agree(state)


@pytest.mark.slow
@hsettings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(state=states)
def test_the_quote_names_the_source_holding_and_price_the_charge_then_uses_60_states(
    agree: Callable[[dict], None], state: dict
) -> None:
    agree(state)


# -- the history ------------------------------------------------------------------------------


async def test_history_is_the_users_own_ledger_newest_first_a_page_at_a_time(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    settings = make_settings("sqlite://")
    user = await new_user(sessionmaker, free=1, balance=3000)
    other = await new_user(sessionmaker, 2002, balance=100)
    async with sessionmaker() as session:
        for _ in range(3):
            await operations.charge(session, settings, user_id=user, op_type="upscale")
        await give_holding(session, user, "pack10", units_left=10)
        await operations.charge(session, settings, user_id=user, op_type="retouch")
        await session.commit()
        items = await wallet.history(session, user_id=user, limit=100)
        kinds = [i.kind for i in items]
        assert kinds == [
            "charge",
            "plan_purchase",
            "charge",
            "charge",
            "charge",
            "adjustment",
            "signup",
        ]
        assert [i.id for i in items] == sorted((i.id for i in items), reverse=True)
        newest = items[0]  # no free operation left, no subscription: the package pays
        assert newest.op_type == "retouch" and newest.funding == Funding.PACKAGE.value
        assert (newest.units_delta, newest.units_after) == (-1, 9)
        assert newest.plan is not None and newest.plan.code == "pack10"
        assert items[2].funding == Funding.BALANCE.value and items[2].amount == -1000
        assert items[4].funding == Funding.FREE.value and items[4].free_delta == -1
        assert items[1].plan is not None and items[1].plan.code == "pack10"
        assert items[1].units_delta == 10
        # Pages by id: older than, newer than; never another user's entries.
        first = await wallet.history(session, user_id=user, limit=3)
        second = await wallet.history(session, user_id=user, before_id=first[-1].id, limit=3)
        assert [i.id for i in first + second] == [i.id for i in items[:6]]
        back = await wallet.history(session, user_id=user, after_id=second[0].id, limit=3)
        assert [i.id for i in back] == [i.id for i in first]
        assert await wallet.has_history(session, user_id=user, before_id=second[-1].id)
        assert not await wallet.has_history(session, user_id=user, after_id=first[0].id)
        theirs = await wallet.history(session, user_id=other, limit=100)
        assert [i.kind for i in theirs] == ["adjustment"]
        assert not set(i.id for i in theirs) & set(i.id for i in items)
