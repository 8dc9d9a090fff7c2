"""States the ledger audit should call out but passes as clean: the balance equals the sum of
the entries and the last entry agrees, yet money moved wrongly. Each is built with the real
service functions and then one honest-looking SQL change, as a buggy code path (or a hand
fix in production) would leave it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from billing import accounts, operations, payments
from billing.audit import audit
from billing.db import make_engine, make_sessionmaker
from tests.conftest import clean_tables, make_settings


@pytest.fixture
async def session(db_url: str) -> AsyncIterator[AsyncSession]:
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as session:
            yield session
    finally:
        await engine.dispose()
        clean_tables(db_url)  # leave clean books behind


async def _paid_operation(session: AsyncSession, db_url: str) -> tuple[int, int]:
    settings = make_settings(db_url, FREE_OPERATIONS_COUNT=0)
    user, _ = await accounts.get_or_create_user(session, telegram_id=4242, free_operations=0)
    await accounts.adjust(session, user_id=user.id, amount=5000, reason="test money")
    charged = await operations.charge(
        session, settings, user_id=user.id, op_type="upscale", request_key="1:1"
    )
    await session.commit()
    assert await audit(session) == []
    return user.id, charged.operation_id


async def test_a_refund_bigger_than_its_charge_is_reported(session, db_url) -> None:
    user_id, operation_id = await _paid_operation(session, db_url)
    refund = await operations.refund_operation(session, operation_id=operation_id)
    assert refund is not None and refund.amount == 1000
    # The refund gave back twice the price; balance, entry and balance_after all agree. The
    # ledger refuses UPDATE (migration 0003): only a superuser who turns triggers off can.
    await session.execute(text("SET LOCAL session_replication_role = replica"))
    await session.execute(
        text(
            "UPDATE ledger_entries SET amount = 2000, balance_after = balance_after + 1000 "
            "WHERE operation_id = :op AND kind = 'refund'"
        ),
        {"op": operation_id},
    )
    await session.execute(
        text("UPDATE users SET balance = balance + 1000 WHERE id = :u"), {"u": user_id}
    )
    await session.commit()
    problems = await audit(session)
    assert any(f"operation {operation_id}" in p for p in problems), problems


async def test_a_paid_operation_failed_without_refund_is_reported(session, db_url) -> None:
    _, operation_id = await _paid_operation(session, db_url)
    # 'failed' is meant for operations that cost nothing (funding none); this one was paid.
    await session.execute(
        text("UPDATE operations SET status = 'failed' WHERE id = :op"), {"op": operation_id}
    )
    await session.commit()
    problems = await audit(session)
    assert any(f"operation {operation_id}" in p for p in problems), problems


async def test_a_payment_refund_without_its_debit_is_reported(session, db_url) -> None:
    user, _ = await accounts.get_or_create_user(session, telegram_id=4343, free_operations=0)
    payment = await payments.create_payment(
        session, user_id=user.id, amount=10_000, currency="RUB"
    )
    await payments.credit_payment(session, payment_id=payment.id, amount=10_000, currency="RUB")
    await session.commit()
    # YooKassa returned 100 ₽ to the card; the row says so, the balance was never debited.
    await session.execute(
        text("UPDATE payments SET refunded_amount = 10000, status = 'refunded' WHERE id = :p"),
        {"p": payment.id},
    )
    await session.commit()
    problems = await audit(session)
    assert any(f"payment {payment.id}" in p for p in problems), problems


async def test_an_operator_refund_marked_succeeded_without_its_debit_is_reported(
    session, db_url
) -> None:
    user, _ = await accounts.get_or_create_user(session, telegram_id=4444, free_operations=0)
    payment = await payments.create_payment(
        session, user_id=user.id, amount=10_000, currency="RUB"
    )
    await payments.credit_payment(session, payment_id=payment.id, amount=10_000, currency="RUB")
    await session.commit()
    # An operator's refund request said done, its debit never written (billing.refunds
    # marks a request succeeded only once the debit is on record).
    await session.execute(
        text(
            "INSERT INTO payment_refunds (payment_id, amount, idempotence_key, status, "
            "yookassa_refund_id, requested_by) VALUES (:p, 5000, 'k1', 'succeeded', 'r-1', 'cli')"
        ),
        {"p": payment.id},
    )
    await session.commit()
    problems = await audit(session)
    assert any("refund request" in p and "r-1" in p for p in problems), problems
