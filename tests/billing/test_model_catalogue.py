"""The model catalogue (issue 15): per operation its backend, model, parameters, price in
units and whether it is offered. Changes are checked before anything is written; the price
in units is the one the charge takes and the quote shows; FAL_KEY decides fal or fallback."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing import ai_models, wallet
from billing.ai_models import DEFAULTS, ModelInvalid, Unavailable, Use
from billing.models import Funding, OperationModel
from billing.prices import PRICES
from tests.billing.helpers import charge_once, new_user
from tests.conftest import _migration, make_settings

NO_KEY = make_settings("sqlite://")
WITH_KEY = make_settings("sqlite://", FAL_KEY="test-key")


def test_the_migration_seeds_the_defaults_of_the_code():
    seed = _migration("20261207_0008_operation_models.py").SEED
    assert {kind: (backend, model, params) for kind, backend, model, params in seed} == {
        kind: (d.backend, d.model_id, dict(d.params)) for kind, d in DEFAULTS.items()
    }
    assert set(DEFAULTS) == set(PRICES)  # every operation has its default


async def test_the_catalogue_lists_every_type_with_its_default(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        rows = await ai_models.list_models(session)
    assert [r.type for r in rows] == list(PRICES)
    generate = rows[0]
    assert (generate.backend, generate.model_id, generate.units, generate.enabled) == (
        "fal",
        "fal-ai/flux/schnell",
        None,
        True,
    )
    assert generate.price_units(NO_KEY) == 1
    assert rows[-1].type == "add_text" and rows[-1].price_units(NO_KEY) == 0


async def test_set_changes_only_what_is_given_and_units_default_goes_back(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        row = await ai_models.set_model(
            session, "upscale", model_id="fal-ai/clarity-upscaler", params={"upscale_factor": 2}
        )
        await session.commit()
    assert (row.backend, row.model_id, dict(row.params), row.units) == (
        "fal",
        "fal-ai/clarity-upscaler",
        {"upscale_factor": 2},
        None,
    )
    async with sessionmaker() as session:
        await ai_models.set_model(session, "upscale", units=3)
        await ai_models.disable(session, "upscale")
        await session.commit()
        row = await ai_models.get_model(session, "upscale")
        assert (row.model_id, row.units, row.enabled) == ("fal-ai/clarity-upscaler", 3, False)
        await ai_models.set_model(session, "upscale", units=None, backend="local")
        await ai_models.enable(session, "upscale")
        await session.commit()
        row = await ai_models.get_model(session, "upscale")
    # Back to local, the fal model stays for going back; the price is the default again.
    assert (row.backend, row.model_id, row.units, row.enabled) == (
        "local",
        "fal-ai/clarity-upscaler",
        None,
        True,
    )


@pytest.mark.parametrize(
    ("op_type", "values", "code"),
    [
        ("paint", {"units": 2}, "unknown_type"),
        ("upscale", {"units": -1}, "bad_units"),
        ("upscale", {"units": 1001}, "bad_units"),
        ("upscale", {"units": True}, "bad_units"),
        ("upscale", {"units": "2"}, "bad_units"),
        ("upscale", {"model_id": "esrgan"}, "bad_model"),
        ("upscale", {"model_id": "fal-ai/esrgan; rm -rf"}, "bad_model"),
        ("upscale", {"model_id": "https://evil.example/x"}, "bad_model"),
        ("upscale", {"backend": "replicate"}, "bad_backend"),
        ("upscale", {"backend": "fal", "model_id": None}, "model_needed"),
        ("generate", {"backend": "local"}, "no_local"),
        ("add_text", {"backend": "fal", "model_id": "fal-ai/x"}, "no_fal"),
        ("upscale", {"params": [1, 2]}, "bad_params"),
        ("upscale", {"params": {"scale": float("nan")}}, "bad_params"),
        ("upscale", {"params": {"x": "y" * 5000}}, "bad_params"),
        ("upscale", {"params": {"image_url": "https://x"}}, "input_param"),
        ("upscale", {"params": {"api_key": "s3cret"}}, "secret_param"),
        ("upscale", {"enabled": "yes"}, "bad_bool"),
    ],
)
async def test_bad_values_are_refused_and_change_nothing(
    sessionmaker: async_sessionmaker[AsyncSession], op_type, values, code
) -> None:
    async with sessionmaker() as session:
        before = await ai_models.list_models(session)
        with pytest.raises(ModelInvalid) as caught:
            await ai_models.set_model(session, op_type, **values)
        assert caught.value.code == code
        assert str(caught.value)  # plain English for the CLI
        await session.rollback()
    async with sessionmaker() as session:
        assert await ai_models.list_models(session) == before


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        ("units=2", {"units": 2}),
        ("units=default", {"units": None}),
        ("model=fal-ai/flux/dev backend=FAL", {"model_id": "fal-ai/flux/dev", "backend": "fal"}),
        ("""params='{"scale": 4}' enabled=no""", {"params": {"scale": 4}, "enabled": False}),
    ],
)
def test_field_value_pairs(tokens, expected):
    assert ai_models.parse_fields(tokens) == expected


@pytest.mark.parametrize(
    ("tokens", "code"),
    [
        ("units", "bad_pair"),
        ("colour=red", "unknown_field"),
        ("units=1 units=2", "repeated"),
        ("units=-3", "bad_units"),
        ("units=two", "bad_units"),
        ("params={scale", "bad_params"),
        ("enabled=maybe", "bad_bool"),
        ("", "missing"),
        ("model='unclosed", "bad_pair"),
    ],
)
def test_bad_field_value_pairs(tokens, code):
    with pytest.raises(ModelInvalid) as caught:
        ai_models.parse_fields(tokens)
    assert caught.value.code == code


async def test_fal_without_a_key_falls_back_to_local_or_is_unavailable(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        models = await ai_models.catalogue(session)
    edit = models.use("edit", WITH_KEY)
    assert edit == Use("edit", "fal", "fal-ai/flux-pro/kontext", {}, 1)
    assert models.use("edit", NO_KEY) == Use("edit", "local", None, {}, 1, fallback=True)
    assert models.use("generate", NO_KEY) is Unavailable.NO_KEY
    assert models.use("add_text", NO_KEY) == Use("add_text", "local", None, {}, 0)
    assert models.offered(NO_KEY) == tuple(k for k in PRICES if k != "generate")
    assert models.offered(WITH_KEY) == tuple(PRICES)
    assert models.unavailable(NO_KEY) == {"generate": Unavailable.NO_KEY}
    assert models.use("retouch", WITH_KEY).as_input() == {
        "backend": "fal",
        "model_id": "fal-ai/codeformer",
        "params": {"fidelity": 0.7},
    }

    async with sessionmaker() as session:
        await ai_models.disable(session, "retouch")
        await ai_models.set_model(session, "upscale", backend="local")
        await session.commit()
        models = await ai_models.catalogue(session)
    assert models.use("retouch", WITH_KEY) is Unavailable.DISABLED
    # Chosen local on purpose: no fallback, whatever the key.
    assert models.use("upscale", WITH_KEY) == Use("upscale", "local", None, {}, 1)


async def test_the_catalogues_units_are_what_the_charge_takes_and_the_quote_shows(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    # OPERATION_UNITS says 2 for upscale; the operator's catalogue price wins over it.
    settings = make_settings("sqlite://", OPERATION_UNITS="upscale=2")
    user = await new_user(sessionmaker, balance=10_000)
    first = await charge_once(sessionmaker, settings, user, op_type="upscale")
    assert (first.units, first.price, first.funding) == (2, 2000, Funding.BALANCE)

    async with sessionmaker() as session:
        await ai_models.set_model(session, "upscale", units=3)
        await session.commit()
        quote = await wallet.quote(session, settings, user_id=user, op_type="upscale")
    assert (quote.units, quote.price) == (3, 3000)
    second = await charge_once(sessionmaker, settings, user, op_type="upscale")
    assert (second.units, second.price, second.balance_after) == (3, 3000, 5000)

    # 0 units: a free operation, the balance untouched.
    async with sessionmaker() as session:
        await ai_models.set_model(session, "upscale", units=0)
        await session.commit()
    third = await charge_once(sessionmaker, settings, user, op_type="upscale")
    assert (third.units, third.price, third.funding, third.balance_after) == (
        0,
        0,
        Funding.NONE,
        5000,
    )

    # Back to the default: OPERATION_UNITS again.
    async with sessionmaker() as session:
        await ai_models.set_model(session, "upscale", units=None)
        await session.commit()
        assert (
            await session.scalar(
                select(OperationModel.units).where(OperationModel.type == "upscale")
            )
        ) is None
    fourth = await charge_once(sessionmaker, settings, user, op_type="upscale")
    assert (fourth.units, fourth.price) == (2, 2000)


async def test_a_free_type_priced_by_the_operator_is_paid_and_back_free(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    settings = make_settings("sqlite://")
    user = await new_user(sessionmaker, free=1, balance=1000)
    async with sessionmaker() as session:
        await ai_models.set_model(session, "add_text", units=1)
        await session.commit()
    first = await charge_once(sessionmaker, settings, user, op_type="add_text")
    assert (first.units, first.funding, first.free_after) == (1, Funding.FREE, 0)
    second = await charge_once(sessionmaker, settings, user, op_type="add_text")
    assert (second.units, second.funding, second.price, second.balance_after) == (
        1,
        Funding.BALANCE,
        1000,
        0,
    )
    async with sessionmaker() as session:
        await ai_models.set_model(session, "add_text", units=None)
        await session.commit()
    third = await charge_once(sessionmaker, settings, user, op_type="add_text")
    assert (third.units, third.funding, third.price) == (0, Funding.NONE, 0)
