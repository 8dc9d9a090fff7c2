"""aiogram's ``Response[T]`` models stay built: a garbage collection does not make the next
Bot API call rebuild its pydantic schema (pydantic caches parametrized generics weakly)."""

from __future__ import annotations

import gc
import weakref

from aiogram.methods import AnswerCallbackQuery, GetChatMenuButton, SetChatMenuButton
from aiogram.methods.base import Response

from tg import response_models
from tg.response_models import PinResponseModels, pin


def test_a_pinned_model_survives_garbage_collection() -> None:
    # Without a pin, pydantic lets the class go (the reason for this module) ...
    loose = weakref.ref(Response[GetChatMenuButton.__returning__])
    gc.collect()
    assert loose() is None
    # ... with one, it stays, and the next call finds it.
    kept = weakref.ref(pin(AnswerCallbackQuery))
    gc.collect()
    assert kept() is not None
    assert Response[AnswerCallbackQuery.__returning__] is kept()


async def test_the_middleware_pins_every_method_it_sees() -> None:
    seen = []

    async def make_request(bot, method):  # noqa: ANN001, ANN202
        seen.append(method)
        return "answer"

    method = SetChatMenuButton(chat_id=1)
    assert SetChatMenuButton not in response_models._PINNED
    assert await PinResponseModels()(make_request, None, method) == "answer"  # type: ignore[arg-type]
    assert seen == [method]
    # Pinned by the middleware itself, not by this look.
    assert (
        response_models._PINNED.get(SetChatMenuButton) is Response[SetChatMenuButton.__returning__]
    )
