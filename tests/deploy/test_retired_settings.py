"""Settings that nothing reads any more are gone from every place an operator looks: a
FAL_MODEL left in an .env would otherwise look like it chooses generate's model, when the
model catalogue does (``python -m billing models set generate model=...``)."""

from __future__ import annotations

import pytest

from billing.settings import Settings
from imaging.fal import FalSettings
from tests.deploy.helpers import COMPOSE, ENV_EXAMPLE, ROOT

# Replaced by the model catalogue (billing.ai_models, issue 15).
RETIRED = ("FAL_MODEL",)


@pytest.mark.parametrize("name", RETIRED)
def test_a_retired_setting_is_no_setting(name: str) -> None:
    assert name not in Settings.model_fields


@pytest.mark.parametrize("name", RETIRED)
def test_a_retired_setting_is_named_in_no_deployment_file(name: str) -> None:
    for path in (ENV_EXAMPLE, COMPOSE, ROOT / "README.md", ROOT / "Dockerfile"):
        assert name not in path.read_text(), f"{path.name} still names {name}"


def test_fal_model_in_the_environment_chooses_no_model() -> None:
    """The client's own settings take no model from the environment either: the caller
    passes the catalogue's."""
    env = {"FAL_KEY": "abc", "FAL_MODEL": "someone/else"}
    assert FalSettings.from_env(env).model == FalSettings.from_env({"FAL_KEY": "abc"}).model
