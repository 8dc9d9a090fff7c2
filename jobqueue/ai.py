"""Which hosted model an AI operation calls: :class:`ModelCall`, and the defaults.

The job of an AI operation gets a ``ModelCall`` (backend, model id, parameters) and submits
it to the provider's queue; the result comes back by webhook (``web``'s ``POST
/fal/webhook``) or, when that is lost, by a scheduled status poll (``workers.ai``).

The operator's model catalogue (``billing.ai_models``) decides per operation; the bot records
the choice in the operation's ``input_ref`` at the charge, and :func:`model_call` reads it
back. Light: no image libraries, no network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from billing.ai_models import DEFAULTS
from billing.prices import OperationType
from billing.settings import Settings


@dataclass(frozen=True, slots=True)
class ModelCall:
    """One call of a hosted model: ``backend`` ("fal"), its ``model_id`` (the queue path,
    e.g. ``fal-ai/flux/schnell``) and ``params`` merged into the model's input."""

    backend: str
    model_id: str
    params: Mapping[str, Any] = field(default_factory=dict)


def model_call(
    op_type: str, model: Mapping[str, Any] | None, settings: Settings
) -> ModelCall | None:
    """The hosted model an operation calls, or None when it runs locally: the model its
    charge recorded (``input_ref["model"]``, from the operator's catalogue, what the user was
    shown), when its backend is fal and fal is configured. An operation queued before the
    catalogue records none: generate (no local code) takes the catalogue's default model,
    the others run locally, as they did."""
    if not settings.fal_configured:
        return None
    if model is None:
        if op_type != OperationType.GENERATE:
            return None
        default = DEFAULTS[OperationType.GENERATE]
        model = {
            "backend": default.backend,
            "model_id": default.model_id,
            "params": default.params,
        }
    if model.get("backend") != "fal" or not isinstance(model.get("model_id"), str):
        return None
    params = model.get("params")
    return ModelCall("fal", model["model_id"], dict(params) if isinstance(params, Mapping) else {})
