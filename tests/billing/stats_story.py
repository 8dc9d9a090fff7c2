"""A seeded story for the operator's figures (billing.stats), written through the real billing
paths and then moved back in time: users who came on different days, payments through
YooKassa and in Stars, a refund to the card that leaves a debt, operations that succeeded,
failed and were refunded, open payments. The expected figures are worked out by hand in
tests/billing/test_stats.py; the bot's and the CLI's tests show the same story.

The clock is fixed at NOW, 10 March 2026, 12:00 in Moscow (09:00 UTC): "today" in Moscow
started at 9 March 21:00 UTC, and 7 days are 4-10 March.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing import accounts, operations, payments, stars
from billing.models import LedgerEntry, Operation, Payment, User
from billing.settings import Settings
from tests.conftest import _ledger_triggers

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # 12:00 in Moscow


def utc(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@dataclass(frozen=True)
class Story:
    telegram_ids: tuple[int, ...]
    debtor: int  # the Telegram id of the user who owes money


async def _backdate(session: AsyncSession, model: type, row_id: int, when: datetime) -> None:
    await session.execute(update(model).where(model.id == row_id).values(created_at=when))


async def _backdate_ledger(session: AsyncSession, moves: dict[str, datetime]) -> None:
    """Entries (by key) moved back in time. The ledger is append-only (migration 0003), so
    its triggers are off for this update only: on PostgreSQL the transaction runs as a
    replica (no ordinary trigger fires), on SQLite they are dropped and made again."""
    dialect = session.bind.dialect.name
    if dialect == "postgresql":
        await session.execute(text("SET LOCAL session_replication_role = replica"))
    else:
        create, drop = _ledger_triggers("sqlite")
        for statement in drop:
            await session.execute(text(statement))
    for key, when in moves.items():
        done = await session.execute(
            update(LedgerEntry).where(LedgerEntry.idempotency_key == key).values(created_at=when)
        )
        assert done.rowcount == 1, key
    if dialect != "postgresql":
        for statement in create:
            await session.execute(text(statement))


async def seed(sm: async_sessionmaker[AsyncSession], settings: Settings) -> Story:
    """The story (telegram ids 1001-1004); ``settings``: KOPECKS_PER_STAR=100, 50 ⭐ packs."""
    ledger_moves: dict[str, datetime] = {}
    async with sm() as s:
        # Users: an old one, one of 5 March, one of 10 March 01:00 Moscow (still 9 March in
        # UTC), one of this morning.
        old, _ = await accounts.get_or_create_user(s, telegram_id=1001, free_operations=2)
        week, _ = await accounts.get_or_create_user(s, telegram_id=1002, free_operations=0)
        night, _ = await accounts.get_or_create_user(s, telegram_id=1003, free_operations=0)
        morning, _ = await accounts.get_or_create_user(s, telegram_id=1004, free_operations=0)
        for user_id, when in (
            (old.id, utc(29, 10, month=1)),
            (week.id, utc(5, 7)),
            (night.id, utc(9, 22)),
            (morning.id, utc(10, 5)),
        ):
            await _backdate(s, User, user_id, when)

        # YooKassa: 300 ₽ on 20 February (30 days only), 100 ₽ on 5 March, 150,50 ₽ today.
        for user_id, amount, when in (
            (old.id, 30_000, utc(20, 9, month=2)),
            (week.id, 10_000, utc(5, 8)),
            (morning.id, 15_050, utc(10, 7)),
        ):
            payment = await payments.create_payment(
                s, user_id=user_id, amount=amount, currency="RUB"
            )
            await payments.credit_payment(
                s,
                payment_id=payment.id,
                amount=amount,
                currency="RUB",
                yookassa_payment_id=f"yk-{payment.id}",
            )
            await _backdate(s, Payment, payment.id, when)
            ledger_moves[f"topup:{payment.id}"] = when
        await s.commit()

    # Stars: 50 ⭐ (50 ₽) paid at 00:30 Moscow today, 21:30 UTC yesterday.
    async with sm() as s:
        invoice = await stars.start_purchase(s, settings, user_id=night.id, stars=50)
        await s.commit()
    credit = await stars.credit_charge(
        sm,
        settings,
        telegram_id=1003,
        payload=invoice.payload,
        currency="XTR",
        total_amount=50,
        charge_id="charge-night",
    )
    assert credit.amount == 5_000
    ledger_moves[f"topup:{invoice.payment_id}"] = utc(9, 21, 30)

    async with sm() as s:
        await _backdate(s, Payment, invoice.payment_id, utc(9, 21, 25))
        # Operations. The user of 5 March pays three upscales from the 100 ₽: two succeed,
        # one fails and is refunded (balance 80 ₽).
        ops: list[tuple[int, datetime]] = []
        for n, (outcome, when) in enumerate(
            (("ok", utc(6, 10)), ("refund", utc(6, 11)), ("ok", utc(8, 12)))
        ):
            charged = await operations.charge(
                s, settings, user_id=week.id, op_type="upscale", request_key=f"2:{n}"
            )
            ops.append((charged.operation_id, when))
            if outcome == "ok":
                await operations.complete_operation(s, operation_id=charged.operation_id)
            else:
                await operations.refund_operation(s, operation_id=charged.operation_id)
        # The old user: an edit on a free operation on 25 February (out of the 7 days), one
        # on 9 March that fails (the free operation is given back: refunded); a free
        # add_text that fails (nothing to give back) and one that succeeds.
        for n, (op_type, outcome, when) in enumerate(
            (
                ("edit", "ok", utc(25, 12, month=2)),
                ("edit", "refund", utc(9, 8)),
                ("add_text", "refund", utc(9, 9)),
                ("add_text", "ok", utc(9, 10)),
            )
        ):
            charged = await operations.charge(
                s, settings, user_id=old.id, op_type=op_type, request_key=f"1:{n}"
            )
            ops.append((charged.operation_id, when))
            if outcome == "ok":
                await operations.complete_operation(s, operation_id=charged.operation_id)
            else:
                await operations.refund_operation(s, operation_id=charged.operation_id)
        # This morning's user: an upscale still in the queue.
        charged = await operations.charge(
            s, settings, user_id=morning.id, op_type="upscale", request_key="4:0"
        )
        ops.append((charged.operation_id, utc(10, 8, 30)))
        for op_id, when in ops:
            await _backdate(s, Operation, op_id, when)

        # The 100 ₽ of 5 March back to the card on 7 March, after 20 ₽ of it was spent:
        # the balance goes to −20 ₽, a debt on record.
        [paid] = [p for p in await _payments_of(s, week.id) if p.credited_at is not None]
        await payments.record_payment_refund(
            s, payment_id=paid.id, refund_id="yk-refund-1", amount=10_000
        )
        ledger_moves["payment_refund:yk-refund-1"] = utc(7, 15)

        # Open payments: 500 ₽ through YooKassa since 06:00 UTC today (3 hours), 100 ⭐
        # (100 ₽) in Stars since 8 March 09:00 UTC (2 days); one canceled, not counted.
        pending = await payments.create_payment(
            s, user_id=morning.id, amount=50_000, currency="RUB"
        )
        await _backdate(s, Payment, pending.id, utc(10, 6))
        canceled = await payments.create_payment(
            s, user_id=morning.id, amount=7_000, currency="RUB"
        )
        await payments.mark_payment_canceled(s, payment_id=canceled.id, reason="expired")
        await _backdate(s, Payment, canceled.id, utc(1, 6))
        await s.commit()
    async with sm() as s:
        open_stars = await stars.start_purchase(s, settings, user_id=old.id, stars=100)
        await _backdate(s, Payment, open_stars.payment_id, utc(8, 9))
        await s.commit()

    async with sm() as s:
        await _backdate_ledger(s, ledger_moves)
        await s.commit()
    return Story(telegram_ids=(1001, 1002, 1003, 1004), debtor=1002)


async def _payments_of(s: AsyncSession, user_id: int) -> list[Payment]:
    return list((await s.scalars(select(Payment).where(Payment.user_id == user_id))).all())


STORY_SETTINGS = {
    "PAYMENT_METHODS": "yookassa,stars",
    "STARS_PACKS": "50,100",
    "KOPECKS_PER_STAR": 100,
    "PRICE_PER_OPERATION": "10",
}
