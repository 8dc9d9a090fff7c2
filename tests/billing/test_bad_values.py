"""Bad values get named errors and change nothing."""

from __future__ import annotations

import pytest

from billing import accounts, operations, payments
from billing.errors import InsufficientFunds, InvalidAmount, UnknownOperationType, UserNotFound
from tests.billing.helpers import new_user
from tests.conftest import make_settings


@pytest.mark.parametrize("amount", [0, -100, 10.5, "100", True])
async def test_a_payment_of_a_bad_amount_is_refused(sessionmaker, amount):
    user_id = await new_user(sessionmaker)
    async with sessionmaker() as session:
        with pytest.raises(InvalidAmount):
            await payments.create_payment(session, user_id=user_id, amount=amount, currency="RUB")


@pytest.mark.parametrize("op_type", ["", "UPSCALE", "rm -rf", None, "refund"])
async def test_an_unknown_operation_type_is_refused(sessionmaker, any_db_url, op_type):
    settings = make_settings(any_db_url)
    user_id = await new_user(sessionmaker, balance=5000)
    async with sessionmaker() as session:
        with pytest.raises(UnknownOperationType):
            await operations.charge(session, settings, user_id=user_id, op_type=op_type)
        await session.rollback()
        assert (await accounts.get_user(session, user_id=user_id)).balance == 5000


async def test_a_charge_for_a_missing_user_is_a_named_error(sessionmaker, any_db_url):
    settings = make_settings(any_db_url)
    async with sessionmaker() as session:
        with pytest.raises(UserNotFound):
            await operations.charge(session, settings, user_id=31337, op_type="upscale")


@pytest.mark.parametrize(
    ("amount", "free_delta", "reason"),
    [(0, 0, "nothing"), (100, 0, "  "), (-1, 0, "too much"), (True, 0, "bool"), (0, 1.5, "x")],
)
async def test_a_bad_adjustment_is_refused(sessionmaker, amount, free_delta, reason):
    user_id = await new_user(sessionmaker)
    async with sessionmaker() as session:
        with pytest.raises((InvalidAmount, InsufficientFunds)):
            await accounts.adjust(
                session, user_id=user_id, amount=amount, free_delta=free_delta, reason=reason
            )
        await session.rollback()
        assert (await accounts.get_user(session, user_id=user_id)).balance == 0


async def test_an_admin_grant_and_debit_are_ledger_entries_with_a_reason(sessionmaker):
    user_id = await new_user(sessionmaker)
    async with sessionmaker() as session:
        await accounts.adjust(session, user_id=user_id, amount=5000, reason="goodwill", admin_id=1)
        state = await accounts.adjust(
            session, user_id=user_id, amount=-2000, free_delta=3, reason="fix", admin_id=1
        )
        await session.commit()
        assert (state.balance, state.free_left) == (3000, 3)
        assert await accounts.ledger_totals(session, user_id=user_id) == (3000, 3)
