"""Random sequences of everything the billing core does keep the audit clean."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from billing import accounts, operations, payments
from billing.audit import audit
from billing.db import make_engine, make_sessionmaker
from billing.errors import BillingError
from tests.conftest import _clean, make_settings

steps = st.lists(
    st.one_of(
        st.tuples(st.just("user"), st.integers(1, 3), st.integers(0, 3)),
        st.tuples(st.just("charge"), st.integers(1, 3), st.sampled_from(["upscale", "add_text"])),
        st.tuples(st.just("refund"), st.integers(0, 20), st.none()),
        st.tuples(st.just("complete"), st.integers(0, 20), st.none()),
        st.tuples(st.just("pay"), st.integers(1, 3), st.integers(1, 5000)),
        st.tuples(st.just("credit"), st.integers(0, 10), st.booleans()),
        st.tuples(st.just("adjust"), st.integers(1, 3), st.integers(-3000, 3000)),
    ),
    max_size=40,
)


async def _run(url: str, engine: AsyncEngine, sequence: list[tuple]) -> list[str]:
    settings = make_settings(url)
    sm = make_sessionmaker(engine)
    users: dict[int, int] = {}
    operation_ids: list[int] = []
    payment_rows: list[tuple[int, int]] = []
    for action, a, b in sequence:
        async with sm() as session:
            try:
                if action == "user":
                    state, _ = await accounts.get_or_create_user(
                        session, telegram_id=a, free_operations=b
                    )
                    users[a] = state.id
                elif action == "charge" and a in users:
                    result = await operations.charge(
                        session, settings, user_id=users[a], op_type=b
                    )
                    operation_ids.append(result.operation_id)
                elif action == "refund" and operation_ids:
                    op = operation_ids[a % len(operation_ids)]
                    await operations.refund_operation(session, operation_id=op)
                elif action == "complete" and operation_ids:
                    op = operation_ids[a % len(operation_ids)]
                    await operations.complete_operation(session, operation_id=op)
                elif action == "pay" and a in users:
                    payment = await payments.create_payment(
                        session, user_id=users[a], amount=b, currency="RUB"
                    )
                    payment_rows.append((payment.id, b))
                elif action == "credit" and payment_rows:
                    pid, amount = payment_rows[a % len(payment_rows)]
                    await payments.credit_payment(
                        session,
                        payment_id=pid,
                        amount=amount if b else amount + 1,
                        currency="RUB",
                    )
                elif action == "adjust" and a in users and b:
                    await accounts.adjust(
                        session, user_id=users[a], amount=b, reason="property test"
                    )
                await session.commit()
            except BillingError:
                await session.rollback()
    async with sm() as session:
        return await audit(session)


@pytest.fixture
def run_sequence(any_db_url: str) -> Iterator[Callable[[list[tuple]], list[str]]]:
    """``run_sequence(steps)``: the audit's problems after the steps, on an emptied database;
    one event loop and engine for all the test's examples (an engine per example compiled
    every statement again: most of the test's time)."""
    loop = asyncio.new_event_loop()
    engine = make_engine(any_db_url, pool_size=2)

    def run(sequence: list[tuple]) -> list[str]:
        _clean(any_db_url)
        return loop.run_until_complete(_run(any_db_url, engine, sequence))

    try:
        yield run
    finally:
        loop.run_until_complete(engine.dispose())
        loop.close()


PROPERTY_SETTINGS = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# The fast tier (make test-fast) runs 10 sequences on each database; make test and CI run
# 40 more (the slow variant below), as many as this test always ran.
@hsettings(max_examples=10, **PROPERTY_SETTINGS)
@given(sequence=steps)
def test_random_sequences_keep_the_audit_clean(run_sequence, sequence):
    assert run_sequence(sequence) == []


@pytest.mark.slow
@hsettings(max_examples=40, **PROPERTY_SETTINGS)
@given(sequence=steps)
def test_random_sequences_keep_the_audit_clean_40_sequences(run_sequence, sequence):
    assert run_sequence(sequence) == []


async def test_the_audit_finds_a_balance_changed_behind_the_ledgers_back(any_db_url):
    from sqlalchemy import update

    from billing.models import User

    engine = make_engine(any_db_url, pool_size=1)
    sm = make_sessionmaker(engine)
    try:
        async with sm() as session:
            user, _ = await accounts.get_or_create_user(session, telegram_id=5, free_operations=1)
            await session.execute(update(User).where(User.id == user.id).values(balance=100))
            await session.commit()
            problems = await audit(session)
        assert any("balance 100 != ledger sum 0" in p for p in problems)
    finally:
        async with sm() as session:
            await session.execute(update(User).values(balance=0))
            await session.commit()
        await engine.dispose()
