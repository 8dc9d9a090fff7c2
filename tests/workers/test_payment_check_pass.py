"""A running worker's maintenance step runs the safety net (workers.payment_checks): a
payment whose notification never came is credited, and its user told, with no web server at
all (the notification had nowhere to go)."""

from __future__ import annotations

from sqlalchemy import select

from billing import accounts
from billing.models import LedgerEntry, LedgerKind
from billing.payments import start_topup
from billing.yookassa import YooKassaGateway
from sandbox import yookassa as yookassa_emulator
from sandbox._common import ServerHandle
from sandbox.yookassa_client import YooKassaEmulatorClient

SHOP_ID = "100501"
SECRET_KEY = "sandbox_secret_for_the_worker_pass"


async def test_a_running_worker_credits_a_payment_whose_notification_never_came(
    harness_factory,
) -> None:
    async with ServerHandle(
        yookassa_emulator.create_app(shop_id=SHOP_ID, secret_key=SECRET_KEY, auto_notify=False)
    ) as yk_server:
        yookassa = {
            "YOOKASSA_SHOP_ID": SHOP_ID,
            "YOOKASSA_SECRET_KEY": SECRET_KEY,
            "YOOKASSA_API_URL": f"{yk_server.url}/v3",
            "PAYMENT_RECHECK_AFTER_SECONDS": 0.2,
            "PAYMENT_RECHECK_INTERVAL_SECONDS": 0.5,
        }
        h = harness_factory(**yookassa)
        user = h.user()
        await user.send_text("/start")
        async with h.sessionmaker() as session:
            account, _ = await accounts.get_or_create_user(
                session, telegram_id=user.user_id, free_operations=0, language="ru"
            )
            await session.commit()
        started = await start_topup(
            h.sessionmaker,
            YooKassaGateway(h.settings),
            h.settings,
            user_id=account.id,
            amount=25_000,
        )
        async with YooKassaEmulatorClient(yk_server.url) as yk:
            await yk.mark_succeeded(started.yookassa_payment_id)  # and no webhook is told

        h.start_worker(**yookassa)
        message = await h.wait_message(
            user, lambda m: m.from_bot and "пополнен" in m.text, "the credited message"
        )
        assert "250 ₽" in message.text
        async with h.sessionmaker() as session:
            entries = (
                await session.scalars(
                    select(LedgerEntry).where(LedgerEntry.kind == LedgerKind.TOPUP.value)
                )
            ).all()
            assert [(e.payment_id, e.amount) for e in entries] == [(started.payment_id, 25_000)]
            assert (await accounts.get_user(session, user_id=account.id)).balance == 25_000
        assert "by the safety net" in h.logs()


async def test_a_running_worker_expires_unpaid_stars_invoices(harness_factory) -> None:
    """Stars offered (no YooKassa at all): the maintenance step cancels an invoice unpaid past
    PAYMENT_PENDING_EXPIRY_SECONDS, so it stops counting as an open payment."""
    import asyncio

    from billing import stars
    from billing.models import Payment, PaymentStatus

    settings = {
        "PAYMENT_METHODS": "stars",
        "PAYMENT_PENDING_EXPIRY_SECONDS": 0.2,
        "PAYMENT_RECHECK_INTERVAL_SECONDS": 0.5,
    }
    h = harness_factory(**settings)
    async with h.sessionmaker() as session:
        account, _ = await accounts.get_or_create_user(
            session, telegram_id=4711, free_operations=0
        )
        invoice = await stars.start_purchase(
            session, h.settings, user_id=account.id, stars=h.settings.STARS_PACKS[0]
        )
        await session.commit()
    h.start_worker(**settings)
    status = None
    for _ in range(600):  # a hang guard, not a speed limit: the pass runs every 0.5 s
        async with h.sessionmaker() as session:
            status = await session.scalar(
                select(Payment.status).where(Payment.id == invoice.payment_id)
            )
        # The worker logs the expiry after its commit: wait for both.
        if status == PaymentStatus.CANCELED and "unpaid invoice(s) expired" in h.logs():
            break
        await asyncio.sleep(0.1)
    assert status == PaymentStatus.CANCELED
    assert "unpaid invoice(s) expired" in h.logs()
