"""aiogram's ``Response[T]`` models stay built: a garbage collection does not make the next
Bot API call rebuild its pydantic schema."""

from __future__ import annotations

import gc
import weakref

from aiogram.methods import AnswerCallbackQuery, GetMyCommands
from aiogram.methods.base import Response

from tg.response_models import PinResponseModels, pin


def test_a_pinned_model_survives_garbage_collection() -> None:
    kept = weakref.ref(pin(AnswerCallbackQuery))
    gc.collect()
    assert kept() is not None
    assert Response[AnswerCallbackQuery.__returning__] is kept()


async def test_the_middleware_pins_every_method_it_sees() -> None:
    seen = []

    async def make_request(bot, method):  # noqa: ANN001, ANN202
        seen.append(method)
        return "answer"

    method = GetMyCommands()
    assert await PinResponseModels()(make_request, None, method) == "answer"  # type: ignore[arg-type]
    assert seen == [method]
    # The model the next GetMyCommands answer is read with outlives a full collection.
    model = weakref.ref(Response[GetMyCommands.__returning__])
    gc.collect()
    assert model() is not None
