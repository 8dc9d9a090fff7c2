"""The media modes: pick one in the menu, send what it needs, get the job queued.

The modes, their buttons and their checks come from the operation catalogue
(:mod:`jobqueue.catalogue`); nothing here names an operation. Each mode is an FSM state
("Mode:<type>"). A message in a mode goes to the ONE billed handler only when its input is
complete and valid (the ``ReadyInput`` filter, which names the type); then ``billed()``
charges and the handler queues the job. Everything else (a first photo of two, a photo
waiting for its text, a wrong or oversized file, an empty or too long text) goes to the
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
from sqlalchemy.ext.asyncio import AsyncSession

from billing import ai_models
from billing.ai_models import Use
from billing.prices import format_rub
from billing.settings import Settings
from bot.billed import BilledMiddleware, BilledOperation, billed, confirm_charge, tell_locked
from bot.callbacks import ConfirmCharge, Menu
from bot.inputs import Answer, Assessment, Ignore, Ready, assess_message
from bot.keyboards import answer_keyboard, back_to_menu, modes
from bot.states import mode_of, mode_state, mode_states
from bot.users import locked_modes, menu_for
from texts import model_texts, wallet_texts
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
            use = None
            if mode is not None and mode in modes():
                use = (await ai_models.catalogue(data["session"])).use(mode, settings)
            if mode is not None and isinstance(use, Use):
                bot: Bot = data["bot"]
                assessment = await assess_message(
                    mode, event, await state.get_data(), settings, data["lang"], bot, use.backend
                )
                data["input_verdict"] = InputVerdict(mode, assessment)
        return await handler(event, data)


class ReadyInput(Filter):
    """Passes when the message completes a valid request in its mode; gives the handler
    `op_type` (what to charge), `media_input` (for the operation row) and `fsm_after` (the
    mode's data once queued)."""

    async def __call__(
        self, message: Message, input_verdict: InputVerdict | None = None
    ) -> bool | dict[str, Any]:
        if input_verdict is None:
            return False
        verdict = input_verdict.assessment
        if isinstance(verdict, Ready):
            return {
                "op_type": input_verdict.mode,
                "media_input": verdict.media,
                "fsm_after": verdict.remember,
            }
        return False


async def open_mode(
    query: CallbackQuery,
    callback_data: Menu,
    state: FSMContext,
    session: AsyncSession,
    settings: Settings,
    lang: str,
) -> None:
    """A mode button: open the mode and say what to send. A mode the user's plans do not
    unlock (🔒) stays closed: the answer names the plans that unlock it."""
    mode = callback_data.action
    use = (await ai_models.catalogue(session)).use(mode, settings)
    if not isinstance(use, Use):  # an old menu: the model was turned off or lost its key
        await query.answer(model_texts.unavailable_text(use, lang), show_alert=True)
        return
    if mode in await locked_modes(session, query.from_user.id):
        await query.answer()
        if isinstance(query.message, Message):
            await tell_locked(query.message, session, mode, lang)
        return
    await state.set_state(mode_state(mode))
    await state.set_data({})
    await query.answer()
    if isinstance(query.message, Message):
        text = prompt(mode, settings, lang, use)
        await query.message.answer(text, reply_markup=back_to_menu(lang))


def prompt(mode: str, settings: Settings, lang: str, use: Use) -> str:
    """What to send, what runs it (the model, or the local code and why), the price: all
    before the user sends anything."""
    price = (
        t("bot-price-free", lang)
        if use.units == 0
        else t(
            "bot-price-paid",
            lang,
            price=format_rub(use.units * settings.price_kopecks),
            ops=wallet_texts.ops(use.units, lang),
        )
    )
    ask = t(model_texts.variant(f"bot-mode-{mode}", use, lang), lang)
    return f"{ask}\n\n{model_texts.uses(use, lang)}\n{price}"


@billed()
async def queue_operation(
    message: Message, operation: BilledOperation, state: FSMContext, fsm_after: dict[str, Any]
) -> None:
    """A complete, valid request in any mode: charged (``billed()``), queued; the mode stays
    open with its inputs cleared."""
    await state.update_data(**fsm_after)
    await operation.enqueue(message)


async def incomplete_input(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    settings: Settings,
    lang: str,
    input_verdict: InputVerdict | None = None,
) -> None:
    """Anything in a mode that is not (yet) a valid request: answer, charge nothing."""
    if input_verdict is None:  # a mode no longer offered (or a state left from old code)
        await state.clear()
        menu = await menu_for(session, settings, message.from_user, lang)
        await message.answer(t("bot-mode-unavailable", lang), reply_markup=menu)
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
        markup = answer_keyboard(verdict.keyboard, lang)
        await message.answer(t(verdict.key, lang, **verdict.args), reply_markup=markup)


def create_router() -> Router:
    """A fresh router (a dispatcher per test or process: a router has one parent)."""
    router = Router(name="modes")
    # Flags reach inner middlewares only: the charge sits on the router's message observer.
    router.message.middleware(BilledMiddleware())
    # Before the filters: ReadyInput and the fallback handler read its verdict.
    router.message.outer_middleware(AssessInput())
    router.callback_query.register(open_mode, Menu.filter(F.action.in_(modes())))
    router.callback_query.register(confirm_charge, ConfirmCharge.filter())
    in_a_mode = StateFilter(*mode_states())
    router.message.register(queue_operation, in_a_mode, ReadyInput())
    router.message.register(incomplete_input, in_a_mode)
    return router
