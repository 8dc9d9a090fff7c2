"""The payment messages' outbox in the billing core, on both databases: each credit, cancel
and refund records its message in its own transaction, once; a claim is a conditional update
that only one caller wins; marking done happens once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from billing import accounts, notices, payments
from billing.models import NoticeKind, NoticeOutcome, PaymentNotice, utcnow

GRACE = timedelta(seconds=300)


async def _payment(session, telegram_id: int = 1, amount: int = 10_000):  # type: ignore[no-untyped-def]
    user, _ = await accounts.get_or_create_user(
        session, telegram_id=telegram_id, free_operations=0
    )
    payment = await payments.create_payment(
        session, user_id=user.id, amount=amount, currency="RUB", idempotence_key=f"k{telegram_id}"
    )
    await session.commit()
    return user, payment


async def _rows(session) -> list[PaymentNotice]:  # type: ignore[no-untyped-def]
    return list(await session.scalars(select(PaymentNotice).order_by(PaymentNotice.id)))


async def test_credit_cancel_and_refund_each_record_one_message(sessionmaker) -> None:
    async with sessionmaker() as session:
        user, paid = await _payment(session, 1, 10_000)
        _, canceled = await _payment(session, 2, 5_000)
        await payments.credit_payment(session, payment_id=paid.id, amount=10_000, currency="RUB")
        assert (
            await payments.credit_payment(
                session, payment_id=paid.id, amount=10_000, currency="RUB"
            )
            is None
        )  # a second credit records nothing
        assert await payments.mark_payment_canceled(session, payment_id=canceled.id, reason="x")
        assert not await payments.mark_payment_canceled(
            session, payment_id=canceled.id, reason="x"
        )
        await payments.record_payment_refund(
            session, payment_id=paid.id, refund_id="r-1", amount=3_000
        )
        assert (
            await payments.record_payment_refund(
                session, payment_id=paid.id, refund_id="r-1", amount=3_000
            )
            is None
        )
        await payments.record_payment_refund(
            session, payment_id=paid.id, refund_id="r-2", amount=2_000
        )
        await session.commit()
        rows = await _rows(session)
    assert [(r.key, r.kind, r.amount, r.balance_after, r.reason) for r in rows] == [
        (notices.credited_key(paid.id), NoticeKind.CREDITED, 10_000, 10_000, None),
        (notices.canceled_key(canceled.id), NoticeKind.CANCELED, 5_000, None, "x"),
        (notices.refunded_key("r-1"), NoticeKind.REFUNDED, 3_000, 7_000, None),
        (notices.refunded_key("r-2"), NoticeKind.REFUNDED, 2_000, 5_000, None),
    ]
    assert all(r.user_id in (user.id, user.id + 1) and r.done_at is None for r in rows)


async def test_a_rolled_back_credit_leaves_no_message(sessionmaker) -> None:
    async with sessionmaker() as session:
        _, payment = await _payment(session)
        await payments.credit_payment(
            session, payment_id=payment.id, amount=10_000, currency="RUB"
        )
        await session.rollback()
        assert await session.scalar(select(func.count()).select_from(PaymentNotice)) == 0


async def test_a_claim_is_won_once_and_done_is_marked_once(sessionmaker) -> None:
    async with sessionmaker() as session:
        _, payment = await _payment(session)
        await payments.credit_payment(
            session, payment_id=payment.id, amount=10_000, currency="RUB"
        )
        await session.commit()
        early = utcnow()
        assert await notices.due(session, now=early, grace=GRACE) == []  # the web's time
        now = early + GRACE + timedelta(seconds=1)
        (notice_id,) = await notices.due(session, now=now, grace=GRACE)
        assert await notices.claim(session, notice_id, now=now - GRACE * 2, grace=GRACE) is None
        claimed = await notices.claim(session, notice_id, now=now, grace=GRACE)
        assert claimed is not None and claimed.attempts == 1 and claimed.telegram_id == 1
        assert await notices.claim(session, notice_id, now=now, grace=GRACE) is None
        later = now + GRACE / 2
        assert await notices.due(session, now=later, grace=GRACE) == []
        # after a transient failure: only the claim's holder records it, and the notice is
        # due again one grace period after the try, not at once
        assert not await notices.release(
            session, notice_id, error="500", claimed_at=now - timedelta(seconds=1)
        )
        assert await notices.release(session, notice_id, error="500", claimed_at=now)
        assert await notices.due(session, now=now, grace=GRACE) == []
        assert await notices.due(session, now=now + GRACE, grace=GRACE) == [notice_id]
        assert await notices.mark_done(session, notice_id=notice_id, outcome=NoticeOutcome.SENT)
        assert not await notices.mark_done(session, key=claimed.key, outcome=NoticeOutcome.BLOCKED)
        assert not await notices.release(session, notice_id, error="late")
        await session.commit()
        assert await notices.due(session, now=now + GRACE * 10, grace=GRACE) == []
        (row,) = await _rows(session)
    assert row.outcome == NoticeOutcome.SENT and row.attempts == 1


async def test_mark_done_needs_exactly_one_reference(sessionmaker) -> None:
    async with sessionmaker() as session:
        with pytest.raises(ValueError):
            await notices.mark_done(session, outcome=NoticeOutcome.SENT)
