"""`python -m billing models list|set|enable|disable` as an operator runs it: the catalogue
changes, bad input is refused in plain words with exit code 1 (2 for a usage error) and
changes nothing, and the list says what runs now with the FAL_KEY of the settings."""

from __future__ import annotations

import functools

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing import ai_models


@pytest.fixture
def cli(any_engine, any_db_url, monkeypatch, billing_cli):
    monkeypatch.setenv("DATABASE_URL", any_db_url)
    monkeypatch.delenv("FAL_KEY", raising=False)
    return functools.partial(billing_cli, "models")


async def test_list_set_disable_enable(
    cli, sessionmaker: async_sessionmaker[AsyncSession], monkeypatch
) -> None:
    code, out, err = await cli("list")
    assert (code, err) == (0, "")
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert list(lines) == list(ai_models.DEFAULTS)
    assert "fal-ai/flux/schnell" in lines["generate"]
    assert "unavailable (no_key)" in lines["generate"]  # no FAL_KEY, no local code
    assert "runs local (fallback: no FAL_KEY)" in lines["edit"]
    assert "1 units (default)" in lines["upscale"] and '{"scale": 2}' in lines["upscale"]

    monkeypatch.setenv("FAL_KEY", "k-123")
    code, out, _ = await cli("list")
    assert "runs fal-ai/flux/schnell" in out and "k-123" not in out

    code, out, err = await cli(
        "set", "upscale", "model=fal-ai/clarity-upscaler", "units=3", 'params={"creativity": 0.35}'
    )
    assert (code, err) == (0, "")
    assert out.startswith("saved: upscale") and "3 units " in out
    async with sessionmaker() as session:
        row = await ai_models.get_model(session, "upscale")
    assert (row.model_id, row.units, dict(row.params)) == (
        "fal-ai/clarity-upscaler",
        3,
        {"creativity": 0.35},
    )

    code, out, _ = await cli("disable", "upscale")
    assert code == 0 and "disabled" in out and "unavailable (disabled)" in out
    code, out, _ = await cli("enable", "upscale")
    assert code == 0 and " enabled " in out
    async with sessionmaker() as session:
        assert (await ai_models.get_model(session, "upscale")).enabled is True


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("set", "paint", "units=2"), "unknown operation type 'paint'"),
        (("set", "upscale", "units=-1"), "units must be a whole number from 0 to 1000"),
        (("set", "upscale", "model=not a model"), "is not a fal model id"),
        (("set", "generate", "backend=local"), "generate has no local implementation"),
        (("set", "upscale", 'params={"fal_key": "x"}'), "provider keys come from the settings"),
        (("set", "upscale"), "nothing to change"),
        (("disable", "paint"), "unknown operation type"),
    ],
)
async def test_bad_input_is_refused_and_changes_nothing(
    cli, sessionmaker: async_sessionmaker[AsyncSession], argv, says
) -> None:
    async with sessionmaker() as session:
        before = await ai_models.list_models(session)
    code, out, err = await cli(*argv)
    assert code == 1 and out == ""
    assert err.startswith("refused: ") and says in err and "nothing changed" in err
    async with sessionmaker() as session:
        assert await ai_models.list_models(session) == before


async def test_a_usage_error_exits_2(cli) -> None:
    code, _, err = await cli("set")
    assert code == 2 and "type" in err
