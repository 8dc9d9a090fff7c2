"""Which operation calls which model until the catalogue decides: jobqueue.ai's defaults,
FAL_OPERATIONS and FAL_MODEL."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from billing.settings import Settings
from jobqueue.ai import DEFAULT_MODELS, ModelCall, model_call


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type, call-arg]


def test_every_default_is_a_fal_model_of_an_operation_with_photos_or_a_prompt() -> None:
    assert set(DEFAULT_MODELS) == {"generate", "edit", "merge", "face_swap", "retouch", "upscale"}
    assert all(
        call.backend == "fal" and call.model_id.count("/") >= 1 for call in DEFAULT_MODELS.values()
    )


def test_without_a_key_every_operation_runs_locally() -> None:
    assert model_call("generate", settings(FAL_OPERATIONS="generate,edit")) is None


def test_only_the_listed_types_go_to_fal_and_fal_model_names_generates_model() -> None:
    s = settings(FAL_KEY="k", FAL_OPERATIONS="generate, Upscale", FAL_MODEL="fal-ai/flux/dev")
    assert s.FAL_OPERATIONS == ("generate", "upscale")
    assert model_call("generate", s) == ModelCall(
        "fal", "fal-ai/flux/dev", {"image_size": "square_hd"}
    )
    assert model_call("upscale", s) == DEFAULT_MODELS["upscale"]
    assert model_call("edit", s) is None
    assert model_call("add_text", s) is None  # listed or not, it has no model


def test_an_unknown_type_in_fal_operations_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown operation types"):
        settings(FAL_KEY="k", FAL_OPERATIONS="generate,paint")
