"""Numbers from outside are bounded before they meet the database (billing.bounds), and an
operator adjustment has a configured maximum and can never push a balance past int64."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from billing import accounts
from billing.bounds import (
    INT32_MAX,
    INT64_MAX,
    MAX_FREE_ADJUST,
    BadNumber,
    parse_count,
    parse_id,
    parse_kopecks,
    parse_signed_kopecks,
)
from billing.errors import AmountOutOfRange
from billing.yookassa import GatewayRejected, parse_amount
from tests.billing.helpers import new_user
from tests.conftest import make_settings

HOSTILE_AMOUNTS = [
    ("1e17", "not_a_number"),
    ("NaN", "not_a_number"),
    ("nan", "not_a_number"),
    ("inf", "not_a_number"),
    ("Infinity", "not_a_number"),
    ("١٠٠", "not_a_number"),  # Arabic-Indic digits
    ("５０", "not_a_number"),  # full-width digits
    ("1_000", "not_a_number"),
    ("0x10", "not_a_number"),
    (" 5", "not_a_number"),
    ("", "not_a_number"),
    ("1.005", "decimals"),
    ("92233720368547758.07", "out_of_range"),  # the int64 maximum in kopecks
    ("99999999999999999999", "out_of_range"),
    ("9" * 5000, "out_of_range"),  # past Python's int() digit limit, never built
]


@pytest.mark.parametrize(("text", "reason"), HOSTILE_AMOUNTS)
def test_a_hostile_amount_is_a_named_refusal(text: str, reason: str) -> None:
    with pytest.raises(BadNumber) as caught:
        parse_kopecks(text, limit=10_000_000)
    assert caught.value.reason == reason


def test_plain_amounts_become_kopecks_within_the_limit() -> None:
    assert parse_kopecks("100000", limit=10_000_000) == 10_000_000
    assert parse_kopecks("9,9", limit=10_000_000) == 990
    assert parse_signed_kopecks("-9.90", limit=10_000_000) == -990
    assert parse_signed_kopecks("−5", limit=10_000_000) == -500
    with pytest.raises(BadNumber):
        parse_kopecks("100000.01", limit=10_000_000)
    with pytest.raises(BadNumber):
        parse_signed_kopecks("--5", limit=10_000_000)


@pytest.mark.parametrize(
    "value",
    [
        "99999999999999999999",
        "9223372036854775808",
        "-1",
        "0",
        "007",
        "+5",
        " 5",
        "١٢٣",
        "1e3",
        "",
        2**63,
        -5,
        True,
        None,
        5.0,
    ],
)
def test_a_hostile_id_is_not_an_id(value: object) -> None:
    assert parse_id(value) is None


def test_ids_up_to_int64_are_ids() -> None:
    assert parse_id("9223372036854775807") == INT64_MAX
    assert parse_id("1") == parse_id(1) == 1


@pytest.mark.parametrize("value", ["10001", "-10001", "99999999999999999999", "١", "1.5", "x"])
def test_a_hostile_count_of_free_operations_is_refused(value: str) -> None:
    with pytest.raises(BadNumber):
        parse_count(value, limit=MAX_FREE_ADJUST)


@pytest.mark.parametrize(
    "value", ["1e17", "1E+30", "1E+100000", "-5.00", "92233720368547758.08", "1E-30"]
)
def test_an_amount_from_yookassa_past_the_columns_is_a_rejected_answer(value: str) -> None:
    with pytest.raises(GatewayRejected):
        parse_amount(value)


async def test_an_adjustment_past_the_operators_limit_changes_nothing(sessionmaker) -> None:
    user_id = await new_user(sessionmaker)
    async with sessionmaker() as session:
        for amount in (10_000_001, -10_000_001, 2**63, -(2**63), 10**30):
            with pytest.raises(AmountOutOfRange):
                await accounts.adjust(
                    session, user_id=user_id, amount=amount, reason="x", max_amount=10_000_000
                )
        for free_delta in (MAX_FREE_ADJUST + 1, -(MAX_FREE_ADJUST + 1), 2**40):
            with pytest.raises(AmountOutOfRange):
                await accounts.adjust(session, user_id=user_id, free_delta=free_delta, reason="x")
        await session.rollback()
        state = await accounts.get_user(session, user_id=user_id)
        assert (state.balance, state.free_left) == (0, 0)
        assert await accounts.ledger_totals(session, user_id=user_id) == (0, 0)
        # The limit itself is allowed.
        await accounts.adjust(
            session, user_id=user_id, amount=10_000_000, reason="ok", max_amount=10_000_000
        )
        await session.commit()


async def test_an_adjustment_never_pushes_a_balance_past_int64(sessionmaker) -> None:
    near = INT64_MAX - 100
    user_id = await new_user(sessionmaker, balance=near)
    async with sessionmaker() as session:
        with pytest.raises(AmountOutOfRange):
            await accounts.adjust(session, user_id=user_id, amount=101, reason="one too many")
        await session.rollback()
        assert (await accounts.get_user(session, user_id=user_id)).balance == near
        state = await accounts.adjust(session, user_id=user_id, amount=100, reason="to the top")
        await session.commit()
        assert state.balance == INT64_MAX
        assert await accounts.ledger_totals(session, user_id=user_id) == (INT64_MAX, 0)
        # Taken back down so the audit's sums stay ordinary.
        await accounts.adjust(session, user_id=user_id, amount=-INT64_MAX, reason="back to 0")
        await session.commit()


async def test_free_operations_never_pass_int32(sessionmaker) -> None:
    user_id = await new_user(sessionmaker, free=INT32_MAX - 5)
    async with sessionmaker() as session:
        with pytest.raises(AmountOutOfRange):
            await accounts.adjust(session, user_id=user_id, free_delta=6, reason="one too many")
        await session.rollback()
        assert (await accounts.get_user(session, user_id=user_id)).free_left == INT32_MAX - 5


def test_the_operators_limit_is_a_setting_with_a_sane_default(any_db_url: str) -> None:
    assert make_settings(any_db_url).admin_adjust_max_kopecks == 100_000 * 100
    assert make_settings(any_db_url, ADMIN_ADJUST_MAX_RUB=500).admin_adjust_max_kopecks == 50_000
    for bad in (0, -1, 10**17):
        with pytest.raises(ValidationError, match="ADMIN_ADJUST_MAX_RUB"):
            make_settings(any_db_url, ADMIN_ADJUST_MAX_RUB=bad)
    with pytest.raises(ValidationError, match="TOPUP_MAX_RUB"):
        make_settings(any_db_url, TOPUP_MAX_RUB=10**17)
