"""The plans catalogue (billing.plans): list, add, edit, archive, with every bad value refused
in plain words and nothing written; exactly one default plan, never archived."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from billing import plans
from billing.models import Plan
from billing.plans import PlanInvalid, PlanNotFound


async def _codes(sm, **kwargs) -> list[str]:
    async with sm() as session:
        return [p.code for p in await plans.list_plans(session, **kwargs)]


async def test_the_seeded_catalogue_is_listed_in_its_order(sessionmaker):
    assert await _codes(sessionmaker) == ["free", "pro", "pack10"]
    async with sessionmaker() as session:
        default = await plans.default_plan(session)
        pro = await plans.get_plan(session, "pro")
        with pytest.raises(PlanNotFound):
            await plans.get_plan(session, "nope")
    assert default.code == "free" and default.is_default
    assert (pro.kind, pro.price, pro.period, pro.units, pro.discount_percent) == (
        "subscription",
        19900,
        "month",
        30,
        10,
    )


async def test_a_plan_is_added_edited_and_archived(sessionmaker):
    async with sessionmaker() as session:
        plan = await plans.add_plan(
            session,
            code="max",
            kind="subscription",
            name_ru="Макс",
            name_en="Max",
            price=49900,
            period="month",
            units=100,
            discount_percent=20,
            unlocks=["generate", "edit"],
            free_operations=3,
            trial_days=7,
        )
        await session.commit()
        assert plan.sort_order == 30  # after the last one
    async with sessionmaker() as session:
        edited = await plans.edit_plan(session, "max", price=39900, units=80, unlocks=None)
        await session.commit()
    assert (edited.price, edited.units, edited.unlocks) == (39900, 80, None)
    assert await _codes(sessionmaker) == ["free", "pro", "pack10", "max"]
    async with sessionmaker() as session:
        archived = await plans.archive_plan(session, "max")
        await session.commit()
        when = archived.archived_at
        assert when is not None
        again = await plans.archive_plan(session, "max")  # changes nothing
        await session.commit()
        assert again.archived_at == when
    assert await _codes(sessionmaker) == ["free", "pro", "pack10"]
    assert await _codes(sessionmaker, include_archived=True) == ["free", "pro", "pack10", "max"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"code": "Pro 2"}, "bad_code"),
        ({"code": "2pro"}, "bad_code"),
        ({"code": "pro"}, "exists"),
        ({"kind": "bundle"}, "bad_choice"),
        ({"name_ru": "  "}, "bad_name"),
        ({"name_en": "x" * 65}, "bad_name"),
        ({"price": -1}, "out_of_range"),
        ({"price": 0}, "free_plan_for_sale"),
        ({"price": "100"}, "bad_number"),
        ({"period": None}, "period_of_subscription"),
        ({"period": "fortnight"}, "bad_choice"),
        ({"units": -5}, "out_of_range"),
        ({"discount_percent": 101}, "out_of_range"),
        ({"unlocks": ["generate", "teleport"]}, "bad_unlocks"),
        ({"unlocks": "generate"}, "bad_unlocks"),
        ({"expires_days": 30}, "expiry_of_package"),
        ({"trial_days": 400}, "out_of_range"),
        ({"free_operations": 10**6}, "out_of_range"),
        ({"is_default": True}, "default_free"),
        ({"colour": "red"}, "unknown_field"),
    ],
)
async def test_a_bad_new_plan_is_refused_and_nothing_is_written(sessionmaker, fields, code):
    values = {
        "code": "plus",
        "kind": "subscription",
        "name_ru": "Плюс",
        "name_en": "Plus",
        "price": 9900,
        "period": "week",
        "units": 5,
    }
    values.update(fields)
    async with sessionmaker() as session:
        with pytest.raises(PlanInvalid) as caught:
            await plans.add_plan(session, **values)
        await session.rollback()
    assert caught.value.code == code
    assert str(caught.value)  # a sentence, for the CLI
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Plan)) == 3


async def test_a_package_has_no_period_and_no_trial(sessionmaker):
    base = {"code": "p5", "kind": "package", "name_ru": "П", "name_en": "P", "price": 100}
    async with sessionmaker() as session:
        for extra, code in (
            ({"period": "month"}, "period_of_subscription"),
            ({"trial_days": 3}, "trial_of_subscription"),
            ({"expires_days": 0}, "out_of_range"),
        ):
            with pytest.raises(PlanInvalid) as caught:
                await plans.add_plan(session, **base, **extra)
            assert caught.value.code == code
        plan = await plans.add_plan(session, **base, units=5, expires_days=None)
        await session.commit()
    assert (plan.period, plan.expires_days) == (None, None)


async def test_there_is_always_exactly_one_default_and_it_is_never_archived(sessionmaker):
    async with sessionmaker() as session:
        with pytest.raises(PlanInvalid) as caught:
            await plans.archive_plan(session, "free")
        assert caught.value.code == "default_archived"
        with pytest.raises(PlanInvalid) as caught:
            await plans.edit_plan(session, "free", is_default=False)
        assert caught.value.code == "default_needed"
        with pytest.raises(PlanInvalid) as caught:
            await plans.edit_plan(session, "free", price=100)
        assert caught.value.code == "default_free"
        with pytest.raises(PlanInvalid) as caught:
            await plans.edit_plan(session, "pro", is_default=True)  # not free
        assert caught.value.code == "default_free"
        await session.rollback()

        await plans.add_plan(
            session,
            code="basic",
            kind="subscription",
            name_ru="Базовый",
            name_en="Basic",
            price=0,
            period="month",
            is_default=True,
        )
        await session.commit()
    async with sessionmaker() as session:
        defaults = (await session.scalars(select(Plan.code).where(Plan.is_default))).all()
        assert defaults == ["basic"]
        assert (await plans.default_plan(session)).code == "basic"
        # Back to free as the default; the archived basic plan cannot become it again.
        await plans.edit_plan(session, "free", is_default=True)
        await plans.archive_plan(session, "basic")
        await session.commit()
        with pytest.raises(PlanInvalid) as caught:
            await plans.edit_plan(session, "basic", is_default=True)
        assert caught.value.code == "default_of_archived"
        await session.rollback()
    async with sessionmaker() as session:
        defaults = (await session.scalars(select(Plan.code).where(Plan.is_default))).all()
    assert defaults == ["free"]


async def test_code_and_kind_cannot_be_edited_and_unknown_plans_are_named(sessionmaker):
    async with sessionmaker() as session:
        for fields in ({"code": "pro2"}, {"kind": "package"}):
            with pytest.raises(PlanInvalid) as caught:
                await plans.edit_plan(session, "pro", **fields)
            assert caught.value.code == "not_editable"
        with pytest.raises(PlanNotFound):
            await plans.edit_plan(session, "nope", price=100)
        with pytest.raises(PlanNotFound):
            await plans.archive_plan(session, "nope")


def test_field_value_pairs_are_parsed_with_quotes_rubles_and_aliases():
    fields = plans.parse_fields(
        'name_ru="Про плюс" price=249,90 units=40 discount=15 unlocks=generate,edit '
        "expires=never trial=3 default=no sort=-5"
    )
    assert fields == {
        "name_ru": "Про плюс",
        "price": 24990,
        "units": 40,
        "discount_percent": 15,
        "unlocks": ["generate", "edit"],
        "expires_days": None,
        "trial_days": 3,
        "is_default": False,
        "sort_order": -5,
    }


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("price", "bad_pair"),
        ("=5", "bad_pair"),
        ("price=abc", "bad_price"),
        ("price=1.999", "bad_price"),
        ("price=99999999999999", "out_of_range"),
        ("units=ten", "bad_number"),
        ("units=-1", "bad_number"),
        ("default=maybe", "bad_bool"),
        ("kind=package", "not_editable"),
        ("code=x", "not_editable"),
        ("colour=red", "unknown_field"),
        ("units=1 units=2", "repeated"),
        ('name_ru="unclosed', "bad_pair"),
    ],
)
def test_bad_pairs_are_refused_with_their_rule(text, code):
    with pytest.raises(PlanInvalid) as caught:
        plans.parse_fields(text)
    assert caught.value.code == code


def test_kind_is_a_field_only_when_adding():
    assert plans.parse_fields("kind=Package", adding=True) == {"kind": "package"}
