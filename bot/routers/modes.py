"""The media modes: pick one in the menu, send what it needs, get the job queued.

Each mode is an FSM state. A message in a mode goes to the mode's billed handler only when
its input is complete and valid (the ``ReadyInput`` filter); then ``billed(...)`` charges
and the handler queues the job. Everything else (a first photo of two, a photo waiting
for its text, a wrong or oversized file, an empty or too long text) goes to the mode's
fallback handler, which answers and charges nothing; the mode stays open either way.
"""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.filters import Filter, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from billing.prices import FREE_TYPES, OperationType, format_rub
from billing.settings import Settings
from bot.billed import BilledMiddleware, BilledOperation, billed
from bot.callbacks import Menu
from bot.i18n import t
from bot.inputs import Answer, Ignore, Ready, assess
from bot.keyboards import MODES, available_modes, back_to_menu, main_menu
from bot.states import Mode, mode_of


class ReadyInput(Filter):
    """Passes when the message completes a valid request for `mode`; gives the handler
    `media_input` (for the operation row) and `fsm_after` (the mode's data once queued)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    async def __call__(
        self, message: Message, state: FSMContext, settings: Settings, lang: str
    ) -> bool | dict[str, Any]:
        if self.mode not in available_modes(settings):
            return False
        verdict = assess(self.mode, message, await state.get_data(), settings, lang)
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
    message: Message, state: FSMContext, settings: Settings, lang: str
) -> None:
    """Anything in a mode that is not (yet) a valid request: answer, charge nothing."""
    mode = mode_of(await state.get_state())
    if mode is None or mode not in available_modes(settings):
        await state.clear()
        await message.answer(
            t("bot-mode-unavailable", lang), reply_markup=main_menu(lang, settings)
        )
        return
    verdict = assess(mode, message, await state.get_data(), settings, lang)
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
