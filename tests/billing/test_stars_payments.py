"""Stars payments in billing (PostgreSQL and SQLite): the pre-checkout check, the credit
once per charge id (the same charge twice, at once too), an old invoice paid again credited
on a row of its own, and the payload of another database's row refused."""

from __future__ import annotations

import asyncio

import pytest

from billing import accounts, stars
from billing.models import PaymentStatus
from billing.settings import Settings
from tests.billing.helpers import new_user

SETTINGS = Settings(PAYMENT_METHODS="stars", STARS_PACKS="50,100", KOPECKS_PER_STAR=150)


async def _purchase(sessionmaker, user_id: int, count: int = 50) -> stars.StarsInvoice:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        invoice = await stars.start_purchase(session, SETTINGS, user_id=user_id, stars=count)
        await session.commit()
    return invoice


async def _credit(sessionmaker, invoice, charge: str, *, telegram_id: int = 1001, total=None):  # type: ignore[no-untyped-def]
    return await stars.credit_charge(
        sessionmaker,
        SETTINGS,
        telegram_id=telegram_id,
        payload=invoice.payload,
        currency="XTR",
        total_amount=invoice.stars if total is None else total,
        charge_id=charge,
    )


async def _balance(sessionmaker, user_id: int) -> int:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        return (await accounts.get_user(session, user_id=user_id)).balance


async def test_only_the_packs_are_sold_at_the_rate_of_the_settings(sessionmaker) -> None:
    user_id = await new_user(sessionmaker)
    invoice = await _purchase(sessionmaker, user_id, 100)
    assert (invoice.stars, invoice.amount) == (100, 15_000)
    assert invoice.payload.startswith(f"stars:{invoice.payment_id}:")
    async with sessionmaker() as session:
        with pytest.raises(stars.BillingError):
            await stars.start_purchase(session, SETTINGS, user_id=user_id, stars=77)


async def test_pre_checkout_accepts_only_this_users_open_purchase_at_its_price(
    sessionmaker,
) -> None:
    user_id = await new_user(sessionmaker)
    await new_user(sessionmaker, 1002)
    invoice = await _purchase(sessionmaker, user_id)
    _, key = stars.parse_payload(invoice.payload)  # type: ignore[misc]

    async def check(payload: str = invoice.payload, tid: int = 1001, total: int = 50, cur="XTR"):  # type: ignore[no-untyped-def]
        async with sessionmaker() as session:
            return await stars.check_pre_checkout(
                session, telegram_id=tid, payload=payload, currency=cur, total_amount=total
            )

    assert await check() is None
    assert await check(tid=1002) is stars.StarsRefused.NOT_YOURS
    assert await check(total=49) is stars.StarsRefused.PRICE
    assert await check(cur="RUB") is stars.StarsRefused.PRICE
    assert await check(f"stars:{invoice.payment_id}:{'f' * 32}") is stars.StarsRefused.UNKNOWN
    assert await check(f"stars:{invoice.payment_id + 1}:{key}") is stars.StarsRefused.UNKNOWN
    assert await check("order-1") is stars.StarsRefused.UNKNOWN
    await _credit(sessionmaker, invoice, "charge-1")
    assert await check() is stars.StarsRefused.STALE


async def test_one_charge_delivered_many_times_at_once_credits_once(sessionmaker) -> None:
    user_id = await new_user(sessionmaker)
    invoice = await _purchase(sessionmaker, user_id)
    results = await asyncio.gather(*(_credit(sessionmaker, invoice, "ch-A") for _ in range(8)))
    outcomes = [r.outcome for r in results]
    assert outcomes.count(stars.StarsOutcome.CREDITED) == 1, outcomes
    assert await _balance(sessionmaker, user_id) == 7_500
    again = await _credit(sessionmaker, invoice, "ch-A")
    assert again.outcome is stars.StarsOutcome.ALREADY_CREDITED and again.balance_after == 7_500


async def test_an_old_invoice_paid_again_is_credited_not_lost(sessionmaker) -> None:
    user_id = await new_user(sessionmaker)
    invoice = await _purchase(sessionmaker, user_id)
    first = await _credit(sessionmaker, invoice, "ch-1")
    second = await _credit(sessionmaker, invoice, "ch-2")
    assert first.outcome is second.outcome is stars.StarsOutcome.CREDITED
    assert not first.repeat and second.repeat
    assert first.payment_id == invoice.payment_id != second.payment_id
    assert second.balance_after == 15_000 == await _balance(sessionmaker, user_id)
    async with sessionmaker() as session:
        from sqlalchemy import select

        from billing.models import Payment

        rows = (await session.scalars(select(Payment).order_by(Payment.id))).all()
    assert [(r.telegram_charge_id, r.status, r.stars, r.amount) for r in rows] == [
        ("ch-1", PaymentStatus.SUCCEEDED, 50, 7_500),
        ("ch-2", PaymentStatus.SUCCEEDED, 50, 7_500),
    ]


async def test_a_refund_debits_what_the_charge_credited_once_even_into_a_debt(
    sessionmaker,
) -> None:
    user_id = await new_user(sessionmaker)
    invoice = await _purchase(sessionmaker, user_id)
    await _credit(sessionmaker, invoice, "ch-R")
    async with sessionmaker() as session:
        await accounts.adjust(session, user_id=user_id, amount=-5_000, reason="spent")
        await session.commit()

    results = await asyncio.gather(
        *(stars.record_refund(sessionmaker, charge_id="ch-R") for _ in range(5))
    )
    outcomes = [r.outcome for r in results]
    assert outcomes.count(stars.RefundOutcome.RECORDED) == 1, outcomes
    assert outcomes.count(stars.RefundOutcome.ALREADY_RECORDED) == 4, outcomes
    assert await _balance(sessionmaker, user_id) == 2_500 - 7_500
    unknown = await stars.record_refund(sessionmaker, charge_id="ch-nothing")
    assert unknown.outcome is stars.RefundOutcome.UNKNOWN
    async with sessionmaker() as session:
        found = await stars.find_payment(session, charge_id="ch-R")
    assert found is not None and found.refunded_amount == found.amount == 7_500


async def test_the_yookassa_refund_command_sends_a_stars_payment_to_the_bots_refund(
    sessionmaker,
) -> None:
    from billing import refunds

    user_id = await new_user(sessionmaker)
    invoice = await _purchase(sessionmaker, user_id)
    await _credit(sessionmaker, invoice, "ch-CLI")
    with pytest.raises(refunds.RefundRefused) as info:
        await refunds.refund_payment(
            sessionmaker, None, payment=invoice.payment_id, requested_by="cli"
        )
    assert info.value.code == "stars"
    assert await _balance(sessionmaker, user_id) == 7_500


async def test_an_unpaid_invoice_expires_and_is_then_refused_or_credited_never_lost(
    sessionmaker,
) -> None:
    """The maintenance pass cancels Stars invoices unpaid past the expiry (they stop counting
    as open payments): the pre-checkout of one is refused (no Stars taken); one approved just
    before the expiry and paid anyway is credited on a row of its own."""
    from datetime import timedelta

    from sqlalchemy import select

    from billing.models import Payment, utcnow

    user_id = await new_user(sessionmaker)
    old, fresh, paid = [await _purchase(sessionmaker, user_id) for _ in range(3)]
    await _credit(sessionmaker, paid, "ch-paid")
    async with sessionmaker() as session:
        assert (
            await stars.expire_invoices(session, made_before=utcnow() - timedelta(hours=1)) == []
        )
        expired = await stars.expire_invoices(session, made_before=utcnow() + timedelta(seconds=1))
        await session.commit()
    assert sorted(expired) == sorted([old.payment_id, fresh.payment_id])
    async with sessionmaker() as session:
        refused = await stars.check_pre_checkout(
            session, telegram_id=1001, payload=old.payload, currency="XTR", total_amount=50
        )
    assert refused is stars.StarsRefused.STALE
    late = await _credit(sessionmaker, fresh, "ch-late")  # approved before, charged after
    assert late.outcome is stars.StarsOutcome.CREDITED and late.payment_id != fresh.payment_id
    assert await _balance(sessionmaker, user_id) == 15_000
    async with sessionmaker() as session:
        rows = (await session.scalars(select(Payment).order_by(Payment.id))).all()
    assert [r.status for r in rows] == [
        PaymentStatus.CANCELED,
        PaymentStatus.CANCELED,
        PaymentStatus.SUCCEEDED,
        PaymentStatus.SUCCEEDED,
    ]
