"""Which hosted model an AI operation calls: :class:`ModelCall`, and the defaults.

The job of an AI operation gets a ``ModelCall`` (backend, model id, parameters) and submits
it to the provider's queue; the result comes back by webhook (``web``'s ``POST
/fal/webhook``) or, when that is lost, by a scheduled status poll (``workers.ai``).

Until the operator's model catalogue decides per operation, :data:`DEFAULT_MODELS` is the one
place that names a model per operation type, and ``FAL_OPERATIONS`` (settings) says which
types go to fal at all (the rest run locally). Light: no image libraries, no network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from billing.prices import OperationType
from billing.settings import Settings


@dataclass(frozen=True, slots=True)
class ModelCall:
    """One call of a hosted model: ``backend`` ("fal"), its ``model_id`` (the queue path,
    e.g. ``fal-ai/flux/schnell``) and ``params`` merged into the model's input."""

    backend: str
    model_id: str
    params: Mapping[str, Any] = field(default_factory=dict)


# The defaults until the model catalogue lands (one per operation kind fal serves).
DEFAULT_MODELS: dict[str, ModelCall] = {
    OperationType.GENERATE: ModelCall("fal", "fal-ai/flux/schnell", {"image_size": "square_hd"}),
    OperationType.EDIT: ModelCall("fal", "fal-ai/flux-pro/kontext", {}),
    OperationType.MERGE: ModelCall("fal", "fal-ai/flux-pro/kontext/multi", {}),
    OperationType.FACE_SWAP: ModelCall("fal", "fal-ai/face-swap", {}),
    OperationType.RETOUCH: ModelCall("fal", "fal-ai/codeformer", {}),
    OperationType.UPSCALE: ModelCall("fal", "fal-ai/esrgan", {"scale": 2}),
}


def model_call(op_type: str, settings: Settings) -> ModelCall | None:
    """The model an operation of ``op_type`` calls, or None when it runs locally: fal is not
    configured, or the type is not in ``FAL_OPERATIONS``. ``FAL_MODEL`` overrides the
    generate default (the setting predates this table)."""
    if not settings.fal_configured or op_type not in settings.FAL_OPERATIONS:
        return None
    call = DEFAULT_MODELS.get(op_type)
    if call is None:
        return None
    if op_type == OperationType.GENERATE and settings.FAL_MODEL != call.model_id:
        return ModelCall(call.backend, settings.FAL_MODEL, call.params)
    return call
