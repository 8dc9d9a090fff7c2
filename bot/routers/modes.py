"""The media modes: pick one in the menu, send what it needs, get the job queued.

Each mode is an FSM state. A message in a mode goes to the mode's billed handler only when
its input is complete and valid (the ``ReadyInput`` filter); then ``billed(...)`` charges
and the handler queues the job. Everything else (a first photo of two, a photo waiting
for its text, a wrong or oversized file, an empty or too long text) goes to the mode's
fallback handler, which answers and charges nothing; the mode stays open either way.

The message is assessed ONCE, by an outer middleware on this router's messages
(:class:`AssessInput`), before any filter runs: for an image document that means reading
its header through the Bot API (``bot.inputs.assess_message``), which should happen once
and never after a charge. ``ReadyInput`` and the fallback handler read that verdict.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import BaseMiddleware, Bot, F, Router
from aiogram.filters import Filter, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, TelegramObject

from billing.prices import FREE_TYPES, OperationType, format_rub
from billing.settings import Settings
from bot.billed import BilledMiddleware, BilledOperation, billed
from bot.callbacks import Menu
from bot.inputs import Answer, Assessment, Ignore, Ready, assess_message
from bot.keyboards import MODES, available_modes, back_to_menu, main_menu
from bot.states import Mode, mode_of
from texts.i18n import t


@dataclass(frozen=True)
class InputVerdict:
    """The assessment of a message in an open, available mode (data key `input_verdict`)."""

    mode: str
    assessment: Assessment


class AssessInput(BaseMiddleware):
    """Assess a message sent in a mode once, before the filters (an outer middleware on
    the router's messages). Messages outside a mode, or in a mode no longer offered, get
    no verdict."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        state: FSMContext | None = data.get("state")
        settings: Settings = data["settings"]
        if isinstance(event, Message) and state is not None:
            mode = mode_of(data.get("raw_state"))
            if mode is not None and mode in available_modes(settings):
                bot: Bot = data["bot"]
                assessment = await assess_message(
                    mode, event, await state.get_data(), settings, data["lang"], bot
                )
                data["input_verdict"] = InputVerdict(mode, assessment)
        return await handler(event, data)


class ReadyInput(Filter):
    """Passes when the message completes a valid request for `mode`; gives the handler
    `media_input` (for the operation row) and `fsm_after` (the mode's data once queued)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    async def __call__(
        self, message: Message, input_verdict: InputVerdict | None = None
    ) -> bool | dict[str, Any]:
        if input_verdict is None or input_verdict.mode != self.mode:
            return False
        verdict = input_verdict.assessment
        if isinstance(verdict, Ready):
            return {"media_input": verdict.media, "fsm_after": verdict.remember}
        return False


async def open_mode(
    query: CallbackQuery,
    callback_data: Menu,
    state: FSMContext,
    settings: Settings,
    lang: str,
) -> None:
    """A mode button: open the mode and say what to send."""
    mode = callback_data.action
    if mode not in available_modes(settings):
        await query.answer(t("bot-mode-unavailable", lang), show_alert=True)
        return
    await state.set_state(getattr(Mode, mode))
    await state.set_data({})
    await query.answer()
    if isinstance(query.message, Message):
        await query.message.answer(prompt(mode, settings, lang), reply_markup=back_to_menu(lang))


def prompt(mode: str, settings: Settings, lang: str) -> str:
    price = (
        t("bot-price-free", lang)
        if OperationType(mode) in FREE_TYPES
        else t("bot-price-paid", lang, price=format_rub(settings.price_kopecks))
    )
    return t(f"bot-mode-{mode}", lang) + "\n\n" + price


async def _queue(
    message: Message, operation: BilledOperation, state: FSMContext, fsm_after: dict[str, Any]
) -> None:
    await state.update_data(**fsm_after)
    await operation.enqueue(message)


@billed("generate")
async def generate(
    message: Message, operation: BilledOperation, state: FSMContext, fsm_after: dict[str, Any]
) -> None:
    """🎨 A picture from a text prompt."""
    await _queue(message, operation, state, fsm_after)


@billed("edit")
async def edit(
    message: Message, operation: BilledOperation, state: FSMContext, fsm_after: dict[str, Any]
) -> None:
    """✏️ A photo and an instruction the parser understood."""
    await _queue(message, operation, state, fsm_after)


@billed("merge")
async def merge(
    message: Message, operation: BilledOperation, state: FSMContext, fsm_after: dict[str, Any]
) -> None:
    """🔗 Two photos side by side."""
    await _queue(message, operation, state, fsm_after)


@billed("face_swap")
async def face_swap(
    message: Message, operation: BilledOperation, state: FSMContext, fsm_after: dict[str, Any]
) -> None:
    """🔄 The face of the first photo onto the second."""
    await _queue(message, operation, state, fsm_after)


@billed("retouch")
async def retouch(
    message: Message, operation: BilledOperation, state: FSMContext, fsm_after: dict[str, Any]
) -> None:
    """✨ A portrait retouched."""
    await _queue(message, operation, state, fsm_after)


@billed("upscale")
async def upscale(
    message: Message, operation: BilledOperation, state: FSMContext, fsm_after: dict[str, Any]
) -> None:
    """⬆️ A photo upscaled twice (its size checked before the charge)."""
    await _queue(message, operation, state, fsm_after)


@billed("add_text")
async def add_text(
    message: Message, operation: BilledOperation, state: FSMContext, fsm_after: dict[str, Any]
) -> None:
    """📝 Text on a photo (free, but recorded like any operation)."""
    await _queue(message, operation, state, fsm_after)


async def incomplete_input(
    message: Message,
    state: FSMContext,
    settings: Settings,
    lang: str,
    input_verdict: InputVerdict | None = None,
) -> None:
    """Anything in a mode that is not (yet) a valid request: answer, charge nothing."""
    if input_verdict is None:  # a mode no longer offered (or a state left from old code)
        await state.clear()
        await message.answer(
            t("bot-mode-unavailable", lang), reply_markup=main_menu(lang, settings)
        )
        return
    verdict = input_verdict.assessment
    if isinstance(verdict, Ignore):
        return
    if isinstance(verdict, Ready):  # the billed handler takes these; never charge here
        return
    assert isinstance(verdict, Answer)
    if verdict.remember:
        await state.update_data(**verdict.remember)
    if verdict.key:
        await message.answer(t(verdict.key, lang, **verdict.args), reply_markup=back_to_menu(lang))


def create_router() -> Router:
    """A fresh router (a dispatcher per test or process: a router has one parent)."""
    router = Router(name="modes")
    # Flags reach inner middlewares only: the charge sits on the router's message observer.
    router.message.middleware(BilledMiddleware())
    # Before the filters: ReadyInput and the fallback handler read its verdict.
    router.message.outer_middleware(AssessInput())
    router.callback_query.register(open_mode, Menu.filter(F.action.in_(MODES)))
    router.message.register(generate, Mode.generate, ReadyInput("generate"))
    router.message.register(edit, Mode.edit, ReadyInput("edit"))
    router.message.register(merge, Mode.merge, ReadyInput("merge"))
    router.message.register(face_swap, Mode.face_swap, ReadyInput("face_swap"))
    router.message.register(retouch, Mode.retouch, ReadyInput("retouch"))
    router.message.register(upscale, Mode.upscale, ReadyInput("upscale"))
    router.message.register(add_text, Mode.add_text, ReadyInput("add_text"))
    router.message.register(incomplete_input, StateFilter(Mode))
    return router
