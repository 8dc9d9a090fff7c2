"""A payment credits the balance once, and only when it matches our row."""

from __future__ import annotations

import asyncio

import pytest

from billing import accounts, payments
from billing.errors import PaymentMismatch, PaymentNotCreditable, PaymentNotFound
from tests.billing.helpers import new_payment, new_user


async def test_50_concurrent_credits_of_one_payment_credit_once(sessionmaker):
    user_id = await new_user(sessionmaker)
    payment = await new_payment(sessionmaker, user_id, 30_000)

    async def credit() -> bool:
        async with sessionmaker() as session:
            result = await payments.credit_payment(
                session, payment_id=payment.id, amount=30_000, currency="RUB"
            )
            await session.commit()
            return result is not None

    results = await asyncio.gather(*(credit() for _ in range(50)))
    assert results.count(True) == 1
    async with sessionmaker() as session:
        assert (await accounts.get_user(session, user_id=user_id)).balance == 30_000


@pytest.mark.parametrize(
    ("amount", "currency", "field"),
    [(20_000, "RUB", "amount"), (10_000, "USD", "currency")],
)
async def test_a_mismatching_credit_writes_nothing(sessionmaker, amount, currency, field):
    user_id = await new_user(sessionmaker)
    payment = await new_payment(sessionmaker, user_id, 10_000)
    async with sessionmaker() as session:
        with pytest.raises(PaymentMismatch) as info:
            await payments.credit_payment(
                session, payment_id=payment.id, amount=amount, currency=currency
            )
        assert info.value.field == field
        await session.rollback()
        assert (await accounts.get_user(session, user_id=user_id)).balance == 0


async def test_a_canceled_payment_is_never_credited(sessionmaker):
    user_id = await new_user(sessionmaker)
    payment = await new_payment(sessionmaker, user_id)
    async with sessionmaker() as session:
        assert await payments.mark_payment_canceled(
            session, payment_id=payment.id, reason="expired_on_confirmation"
        )
        await session.commit()
        with pytest.raises(PaymentNotCreditable):
            await payments.credit_payment(
                session, payment_id=payment.id, amount=10_000, currency="RUB"
            )
        await session.rollback()


async def test_a_credited_payment_is_never_canceled(sessionmaker):
    user_id = await new_user(sessionmaker)
    payment = await new_payment(sessionmaker, user_id)
    async with sessionmaker() as session:
        await payments.credit_payment(
            session, payment_id=payment.id, amount=10_000, currency="RUB"
        )
        assert not await payments.mark_payment_canceled(session, payment_id=payment.id, reason="x")
        await session.commit()
        assert (await accounts.get_user(session, user_id=user_id)).balance == 10_000


async def test_an_unknown_payment_is_a_named_error(sessionmaker):
    async with sessionmaker() as session:
        with pytest.raises(PaymentNotFound):
            await payments.credit_payment(session, payment_id=99999, amount=100, currency="RUB")


async def test_a_refund_through_yookassa_debits_once_and_may_leave_a_debt(
    sessionmaker, any_db_url
):
    from tests.billing.helpers import charge_once
    from tests.conftest import make_settings

    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker)
    payment = await new_payment(sessionmaker, user_id, 1000)
    async with sessionmaker() as session:
        await payments.credit_payment(session, payment_id=payment.id, amount=1000, currency="RUB")
        await session.commit()
    await charge_once(sessionmaker, settings, user_id)  # the money is spent
    async with sessionmaker() as session:
        assert (
            await payments.record_payment_refund(
                session, payment_id=payment.id, refund_id="r-1", amount=1000
            )
            == -1000
        )
        await session.commit()
        assert (
            await payments.record_payment_refund(
                session, payment_id=payment.id, refund_id="r-1", amount=1000
            )
            is None
        )
        await session.commit()
        user = await accounts.get_user(session, user_id=user_id)
    assert user.balance == -1000


async def test_a_credit_checks_and_records_the_yookassa_payment(sessionmaker):
    """The YooKassa id must be the row's (or the row has none yet); the credit records it,
    YooKassa's object, the status and the time, and one top-up entry with the new balance."""
    from sqlalchemy import select

    from billing.models import LedgerEntry, Payment

    user_id = await new_user(sessionmaker)
    attached = await new_payment(sessionmaker, user_id, 10_000)
    bare = await new_payment(sessionmaker, user_id, 5_000)
    async with sessionmaker() as session:
        await payments.attach_provider_payment(
            session,
            payment_id=attached.id,
            yookassa_payment_id="yk-1",
            confirmation_url="https://pay.example/1",
            status="pending",
        )
        await session.commit()
    async with sessionmaker() as session:
        with pytest.raises(PaymentMismatch) as info:
            await payments.credit_payment(
                session,
                payment_id=attached.id,
                amount=10_000,
                currency="RUB",
                yookassa_payment_id="yk-other",
            )
        assert info.value.field == "yookassa_payment_id"
        await session.rollback()
    async with sessionmaker() as session:
        first = await payments.credit_payment(
            session,
            payment_id=attached.id,
            amount=10_000,
            currency="RUB",
            yookassa_payment_id="yk-1",
            raw={"id": "yk-1", "status": "succeeded"},
        )
        second = await payments.credit_payment(
            session,
            payment_id=bare.id,
            amount=5_000,
            currency="RUB",
            yookassa_payment_id="yk-2",
            raw={"id": "yk-2"},
        )
        await session.commit()
    assert first is not None and second is not None
    assert (first.balance_after, second.balance_after) == (10_000, 15_000)
    assert first.user_id == second.user_id == user_id
    async with sessionmaker() as session:
        rows = {
            row.id: row
            for row in await session.execute(
                select(
                    Payment.id,
                    Payment.status,
                    Payment.yookassa_payment_id,
                    Payment.raw,
                    Payment.credited_at,
                ).where(Payment.id.in_([attached.id, bare.id]))
            )
        }
        entries = (
            await session.execute(
                select(LedgerEntry.idempotency_key, LedgerEntry.amount, LedgerEntry.balance_after)
                .where(LedgerEntry.user_id == user_id)
                .order_by(LedgerEntry.id)
            )
        ).all()
    assert rows[attached.id].status == "succeeded" and rows[bare.id].status == "succeeded"
    assert rows[attached.id].yookassa_payment_id == "yk-1"
    assert rows[bare.id].yookassa_payment_id == "yk-2"
    assert rows[attached.id].raw == {"id": "yk-1", "status": "succeeded"}
    assert rows[attached.id].credited_at is not None
    topups = [tuple(e) for e in entries if e.idempotency_key.startswith("topup:")]
    assert topups == [
        (f"topup:{attached.id}", 10_000, 10_000),
        (f"topup:{bare.id}", 5_000, 15_000),
    ]
