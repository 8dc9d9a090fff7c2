"""Top-ups through the real yookassa SDK against the YooKassa emulator."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select

from billing import accounts, payments
from billing.db import make_sessionmaker
from billing.models import Payment
from billing.payments import Outcome, TopUpUnavailable, reconcile_payment, start_topup
from billing.yookassa import YooKassaGateway
from sandbox._common import ServerHandle
from sandbox.yookassa import create_app
from sandbox.yookassa_client import YooKassaEmulatorClient
from tests.conftest import make_settings

SHOP, SECRET = "100500", "test_secret_key_for_topups"


@pytest.fixture
async def yk():
    async with ServerHandle(create_app(shop_id=SHOP, secret_key=SECRET)) as server:
        async with YooKassaEmulatorClient(server.url) as client:
            yield server, client


@pytest.fixture
def topup_env(engine, db_url, yk, monkeypatch):
    server, client = yk
    # The create call's retries, 10 ms apart instead of 0.5 s and 1 s: the tests count the
    # attempts, not the seconds between them.
    monkeypatch.setattr(payments, "CREATE_BACKOFF", 0.01)
    settings = make_settings(
        db_url,
        YOOKASSA_SHOP_ID=SHOP,
        YOOKASSA_SECRET_KEY=SECRET,
        YOOKASSA_API_URL=client.api_url,
        YOOKASSA_TIMEOUT=2,
        YOOKASSA_RETURN_URL="https://t.me/media_lab_bot",
    )
    return settings, make_sessionmaker(engine), YooKassaGateway(settings), client


async def _user(sm) -> int:
    async with sm() as session:
        user, _ = await accounts.get_or_create_user(
            session, telegram_id=555, free_operations=0, language="ru"
        )
        await session.commit()
        return user.id


async def test_a_topup_creates_one_payment_with_our_key_and_metadata(topup_env):
    settings, sm, gateway, client = topup_env
    user_id = await _user(sm)
    started = await start_topup(sm, gateway, settings, user_id=user_id, amount=30_000)
    assert started.confirmation_url
    requests = await client.requests("/v3/payments", method="POST")
    assert len(requests) == 1
    body = requests[0]["body"]
    assert body["amount"] == {"value": "300.00", "currency": "RUB"}
    assert body["capture"] is True
    assert body["confirmation"] == {"type": "redirect", "return_url": "https://t.me/media_lab_bot"}
    assert body["metadata"]["payment_row_id"] == str(started.payment_id)
    assert body["metadata"]["user_id"] == str(user_id)
    async with sm() as session:
        row = await session.get(Payment, started.payment_id)
    assert requests[0]["headers"]["Idempotence-Key"] == row.idempotence_key
    assert body["metadata"]["payment_row_key"] == row.idempotence_key
    assert (row.status, row.yookassa_payment_id) == ("pending", started.yookassa_payment_id)


async def test_a_lost_answer_is_retried_with_the_same_key_and_makes_one_payment(topup_env):
    settings, sm, gateway, client = topup_env
    user_id = await _user(sm)
    await client.drop_next(1, only="create", after_processing=True)
    started = await start_topup(sm, gateway, settings, user_id=user_id, amount=10_000)
    keys = [r["headers"]["Idempotence-Key"] for r in await client.requests("/v3/payments")]
    assert len(keys) == 2 and keys[0] == keys[1]
    assert [p["id"] for p in await client.payments()] == [started.yookassa_payment_id]


async def test_yookassa_down_marks_the_row_failed_and_credits_nothing(topup_env):
    settings, sm, gateway, client = topup_env
    user_id = await _user(sm)
    await client.fail_next(10, only="create", status=500)
    with pytest.raises(TopUpUnavailable):
        await start_topup(sm, gateway, settings, user_id=user_id, amount=10_000)
    # Every attempt was made, with the one key, before the row was given up.
    keys = [r["headers"]["Idempotence-Key"] for r in await client.requests("/v3/payments")]
    assert len(keys) == payments.CREATE_ATTEMPTS and len(set(keys)) == 1
    async with sm() as session:
        rows = (await session.scalars(select(Payment))).all()
        assert [r.status for r in rows] == ["failed"]
        assert (await accounts.get_user(session, user_id=user_id)).balance == 0


async def test_reconcile_credits_once_however_often_it_is_asked(topup_env):
    settings, sm, gateway, client = topup_env
    user_id = await _user(sm)
    started = await start_topup(sm, gateway, settings, user_id=user_id, amount=50_000)
    pending = await reconcile_payment(sm, gateway, payment_id=started.payment_id)
    assert pending.outcome == Outcome.PENDING
    await client.mark_succeeded(started.yookassa_payment_id)
    results = await asyncio.gather(
        *(reconcile_payment(sm, gateway, payment_id=started.payment_id) for _ in range(5))
    )
    outcomes = sorted(r.outcome for r in results)
    assert outcomes.count(Outcome.CREDITED) == 1
    assert outcomes.count(Outcome.ALREADY_CREDITED) == 4
    async with sm() as session:
        assert (await accounts.get_user(session, user_id=user_id)).balance == 50_000


async def test_a_canceled_payment_is_marked_with_its_reason(topup_env):
    settings, sm, gateway, client = topup_env
    user_id = await _user(sm)
    started = await start_topup(sm, gateway, settings, user_id=user_id, amount=10_000)
    await client.mark_canceled(started.yookassa_payment_id, reason="insufficient_funds")
    result = await reconcile_payment(sm, gateway, yookassa_payment_id=started.yookassa_payment_id)
    assert (result.outcome, result.cancellation_reason) == (Outcome.CANCELED, "insufficient_funds")
    async with sm() as session:
        assert (await session.get(Payment, started.payment_id)).status == "canceled"


async def test_an_unknown_payment_is_reported_not_raised(topup_env):
    settings, sm, gateway, client = topup_env
    result = await reconcile_payment(sm, gateway, yookassa_payment_id="no-such-payment")
    assert result.outcome == Outcome.UNKNOWN_PAYMENT


async def test_an_unexpected_gateway_failure_still_marks_the_row_failed(topup_env):
    settings, sm, gateway, client = topup_env
    user_id = await _user(sm)

    async def broken(**kwargs):
        raise KeyError("confirmation")  # e.g. an SDK change in the answer's shape

    gateway.create_payment = broken
    with pytest.raises(TopUpUnavailable):
        await start_topup(sm, gateway, settings, user_id=user_id, amount=10_000)
    async with sm() as session:
        rows = (await session.scalars(select(Payment))).all()
        assert [r.status for r in rows] == ["failed"]


@pytest.mark.parametrize(
    "old_metadata",
    [
        {"telegram_id": "555", "payment_row_key": "0" * 32},  # same person, another row key
        {"telegram_id": "999"},  # another person, a payment made before row keys were sent
    ],
    ids=["another-row-key", "another-telegram-user"],
)
async def test_a_payment_of_another_database_never_credits_a_row_of_the_same_ids(
    topup_env, old_metadata
):
    """A database that starts again (restored, recreated) reuses payment and user ids, while
    YooKassa goes on notifying of the old database's payments for a day. Such a payment names
    a row id and a user id this database has too; for a row YooKassa never answered (no
    YooKassa id on it) nothing else told them apart, and the old payment's money was credited
    to the new row: another person's top-up, or one the user then pays for again."""
    settings, sm, gateway, client = topup_env
    user_id = await _user(sm)
    async with sm() as session:
        row = await payments.create_payment(
            session, user_id=user_id, amount=10_000, currency="RUB", idempotence_key="a" * 32
        )
        await session.commit()
        row_id = row.id
    old = await gateway.create_payment(
        amount=10_000,
        currency="RUB",
        description="a payment of the database before",
        metadata={"payment_row_id": str(row_id), "user_id": str(user_id), **old_metadata},
        idempotence_key=uuid.uuid4().hex,
    )
    await client.mark_succeeded(old.id)

    result = await reconcile_payment(sm, gateway, payment_id=row_id, yookassa_payment_id=old.id)

    assert result.outcome == Outcome.MISMATCH, result
    async with sm() as session:
        assert (await accounts.get_user(session, user_id=user_id)).balance == 0
        assert (await session.get(Payment, row_id)).credited_at is None
