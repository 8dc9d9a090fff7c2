"""The plans' settings (issue 14): the spending order, units per type, free renewals; and
the catalogue every test starts from."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from billing.models import Plan
from billing.prices import discounted, price_for, units_of
from billing.settings import Settings


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


def test_the_default_spending_order_is_free_subscription_package_balance():
    assert settings().SPENDING_ORDER == ("free", "subscription", "package", "balance")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("subscription,free,package,balance", ("subscription", "free", "package", "balance")),
        (" Balance ; package,subscription , free", ("balance", "package", "subscription", "free")),
    ],
)
def test_any_permutation_is_a_spending_order(given, expected):
    assert settings(SPENDING_ORDER=given).SPENDING_ORDER == expected


@pytest.mark.parametrize(
    "given",
    [
        "free,subscription,package",  # one missing
        "free,subscription,package,balance,balance",  # twice
        "free,subscription,package,card",  # unknown
        "",
    ],
)
def test_a_spending_order_that_is_not_a_permutation_is_refused(given):
    with pytest.raises(ValidationError, match="SPENDING_ORDER"):
        settings(SPENDING_ORDER=given)


def test_operation_units_override_the_catalogue_and_the_price_follows():
    s = settings(OPERATION_UNITS="generate=2, edit=3", PRICE_PER_OPERATION="10")
    assert s.OPERATION_UNITS == {"generate": 2, "edit": 3}
    assert units_of("generate", s) == 2
    assert units_of("edit", s) == 3
    assert units_of("retouch", s) == 1  # not named: the catalogue's
    assert units_of("generate") == 1  # without settings: the catalogue's
    assert price_for("generate", s) == 2000
    assert price_for("retouch", s) == 1000


@pytest.mark.parametrize(
    "given",
    ["paint=2", "generate", "generate=two", "generate=-1", "generate=1001", "edit=1,edit=2"],
)
def test_bad_operation_units_are_refused(given):
    with pytest.raises(ValidationError, match="OPERATION_UNITS"):
        settings(OPERATION_UNITS=given)


def test_free_renewal_days_unset_or_at_least_one():
    assert settings().FREE_OPERATIONS_RENEW_DAYS is None
    assert settings(FREE_OPERATIONS_RENEW_DAYS="").FREE_OPERATIONS_RENEW_DAYS is None
    assert settings(FREE_OPERATIONS_RENEW_DAYS="30").FREE_OPERATIONS_RENEW_DAYS == 30
    with pytest.raises(ValidationError, match="FREE_OPERATIONS_RENEW_DAYS"):
        settings(FREE_OPERATIONS_RENEW_DAYS="0")


def test_confirm_and_renewal_interval_defaults():
    s = settings()
    assert s.CONFIRM_CHARGES_DEFAULT is False
    assert s.PLAN_RENEWAL_INTERVAL_SECONDS == 300
    with pytest.raises(ValidationError, match="PLAN_RENEWAL_INTERVAL_SECONDS"):
        settings(PLAN_RENEWAL_INTERVAL_SECONDS="0")


@pytest.mark.parametrize(
    ("kopecks", "percent", "expected"),
    [(1000, 10, 900), (1000, 0, 1000), (1000, 100, 0), (1005, 10, 905), (1015, 15, 863)],
)
def test_discount_rounds_to_the_kopeck_half_up(kopecks, percent, expected):
    # 1005 * 0.9 = 904.5 -> 905; 1015 * 0.85 = 862.75 -> 863
    assert discounted(kopecks, percent) == expected


@pytest.mark.parametrize("run", [1, 2])  # the second run sees what the first one left
async def test_each_test_starts_from_the_seeded_catalogue(sessionmaker, run):
    async with sessionmaker() as session:
        plans = (await session.scalars(select(Plan).order_by(Plan.id))).all()
        assert [(p.id, p.code, p.kind, p.price, p.units) for p in plans] == [
            (1, "free", "subscription", 0, 0),
            (2, "pro", "subscription", 19900, 30),
            (3, "pack10", "package", 8000, 10),
        ]
        assert [p.is_default for p in plans] == [True, False, False]
        assert plans[1].discount_percent == 10 and plans[2].expires_days == 90
        assert all(p.unlocks is None for p in plans)
        # a test that edits the catalogue leaves nothing behind for the next one
        plans[1].price = 1
        session.add(Plan(code="x", kind="package", name_ru="x", name_en="x", price=1, units=1))
        await session.commit()
