"""Which model an operation calls (jobqueue.ai.model_call): the one its charge recorded from
the operator's catalogue (input_ref["model"]), when fal runs it and fal is configured."""

from __future__ import annotations

from billing.ai_models import DEFAULTS
from billing.settings import Settings
from jobqueue.ai import ModelCall, model_call

FAL = {"backend": "fal", "model_id": "fal-ai/esrgan", "params": {"scale": 4}}


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type, call-arg]


def test_the_recorded_model_is_called_when_fal_is_configured() -> None:
    s = settings(FAL_KEY="k")
    assert model_call("upscale", FAL, s) == ModelCall("fal", "fal-ai/esrgan", {"scale": 4})


def test_without_a_key_every_operation_runs_locally() -> None:
    assert model_call("upscale", FAL, settings()) is None
    assert model_call("generate", None, settings()) is None


def test_a_local_choice_runs_locally() -> None:
    local = {"backend": "local", "model_id": None, "params": {}}
    assert model_call("upscale", local, settings(FAL_KEY="k")) is None


def test_an_operation_queued_before_the_catalogue_runs_as_it_did() -> None:
    """No recorded model: generate (no local code) calls the default model, the rest local."""
    s = settings(FAL_KEY="k")
    default = DEFAULTS["generate"]
    assert model_call("generate", None, s) == ModelCall(
        "fal", str(default.model_id), dict(default.params)
    )
    assert model_call("upscale", None, s) is None


def test_a_malformed_record_is_not_sent_anywhere() -> None:
    s = settings(FAL_KEY="k")
    assert model_call("upscale", {"backend": "fal", "model_id": 7}, s) is None
    assert model_call("upscale", {"backend": "fal", "model_id": "m", "params": "x"}, s) == (
        ModelCall("fal", "m", {})
    )
