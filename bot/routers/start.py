"""/start, /help, /menu and the main menu."""

from __future__ import annotations

import html
import logging

from aiogram import F, Router
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, ReplyParameters, User
from sqlalchemy.ext.asyncio import AsyncSession

from billing import ai_models, wallet
from billing.ai_models import Catalogue, Use, default_catalogue
from billing.prices import format_rub
from billing.settings import Settings
from bot.callbacks import Menu
from bot.keyboards import available_modes, back_to_menu, chat_menu_button, modes
from bot.users import ensure_user, menu_for, menu_text, money_args
from texts import model_texts, wallet_texts
from texts.i18n import t

log = logging.getLogger(__name__)

OP_LINK = "op_"  # /start op_<operation id>: the Mini App's link to an operation's result
OP_LINK_PATTERN = r"^op_[0-9]{1,18}$"


async def _greeting(session: AsyncSession, settings: Settings, user: User, lang: str) -> str:
    account = await ensure_user(session, settings, user, lang)
    return t(
        "bot-start",
        lang,
        name=html.escape(user.first_name or ""),
        **money_args(account, settings),
    )


async def cmd_start(
    message: Message, state: FSMContext, session: AsyncSession, settings: Settings, lang: str
) -> None:
    """Greet, show the free operations and the price, open the main menu (leaving any mode);
    with WEBAPP_URL, the chat's menu button in the user's language."""
    await state.clear()
    assert message.from_user is not None
    text = await _greeting(session, settings, message.from_user, lang)
    menu = await menu_for(session, settings, message.from_user, lang)
    if settings.WEBAPP_URL and message.chat.type == "private" and message.bot is not None:
        try:  # before the greeting: the user may tap the button as soon as it arrives
            await message.bot.set_chat_menu_button(
                chat_id=message.chat.id, menu_button=chat_menu_button(lang, settings.WEBAPP_URL)
            )
        except TelegramAPIError as exc:  # the greeting is what matters; the button can wait
            log.warning("menu button for chat %s not set: %s", message.chat.id, exc)
    await message.answer(await menu_text(session, settings, text, lang), reply_markup=menu)


async def cmd_menu(
    message: Message, state: FSMContext, session: AsyncSession, settings: Settings, lang: str
) -> None:
    """The main menu without the greeting."""
    await state.clear()
    assert message.from_user is not None
    menu = await menu_for(session, settings, message.from_user, lang)
    text = await menu_text(session, settings, t("bot-menu", lang), lang)
    await message.answer(text, reply_markup=menu)


def help_text(settings: Settings, lang: str, models: Catalogue | None = None) -> str:
    """Each mode offered, what it uses and what it costs; the modes not offered, and why."""
    models = models or default_catalogue()
    offered = available_modes(settings, models)
    lines = []
    for mode in offered:
        use = models.use(mode, settings)
        assert isinstance(use, Use)  # offered
        lines.append(model_texts.help_line(mode, use, settings, lang))
    text = t(
        "bot-help",
        lang,
        modes="\n".join(lines),
        price=format_rub(settings.price_kopecks),
        free_total=settings.FREE_OPERATIONS_COUNT,
    )
    # With units other than one: which modes count as more than one operation.
    notes = [
        wallet_texts.units_note(settings, lang, offered, models.set_units()),
        model_texts.menu_note(models, settings, modes(), lang),
    ]
    return "\n\n".join([text, *(n for n in notes if n)])


async def cmd_help(message: Message, session: AsyncSession, settings: Settings, lang: str) -> None:
    """Each mode, what it uses and its price."""
    text = help_text(settings, lang, await ai_models.catalogue(session))
    await message.answer(text, reply_markup=back_to_menu(lang))


async def show_menu(
    query: CallbackQuery,
    state: FSMContext,
    session: AsyncSession,
    settings: Settings,
    lang: str,
) -> None:
    """🏠 Меню: back to the main menu, leaving any mode or top-up step."""
    await state.clear()
    await query.answer()
    if isinstance(query.message, Message):
        menu = await menu_for(session, settings, query.from_user, lang)
        text = await menu_text(session, settings, t("bot-menu", lang), lang)
        await query.message.answer(text, reply_markup=menu)


async def show_help(
    query: CallbackQuery, session: AsyncSession, settings: Settings, lang: str
) -> None:
    await query.answer()
    if isinstance(query.message, Message):
        text = help_text(settings, lang, await ai_models.catalogue(session))
        await query.message.answer(text, reply_markup=back_to_menu(lang))


async def cmd_start_operation(
    message: Message,
    command: CommandObject,
    state: FSMContext,
    session: AsyncSession,
    settings: Settings,
    lang: str,
) -> None:
    """/start op_<id>, the Mini App's link back to an operation: the bot answers by replying
    to the message the result was delivered as, or sends the result's file again when that
    message is gone. Only the user's own operation; any other id gets a plain refusal."""
    await state.clear()
    assert message.from_user is not None and command.args is not None
    account = await ensure_user(session, settings, message.from_user, lang)
    found = await wallet.delivered_result(
        session, user_id=account.id, operation_id=int(command.args.removeprefix(OP_LINK))
    )
    await session.rollback()
    if found is None:
        await message.answer(t("bot-op-link-refused", lang))
        return
    words = t(
        "bot-op-link-result",
        lang,
        id=str(found.operation_id),
        mode=wallet_texts.mode_name(found.type, lang),
        date=wallet_texts.datetime_text(found.created_at, lang),
    )
    if found.message_id is not None and found.chat_id == message.chat.id:
        try:
            await message.answer(
                words,
                reply_parameters=ReplyParameters(
                    message_id=found.message_id, allow_sending_without_reply=False
                ),
            )
            return
        except TelegramBadRequest as exc:  # deleted (by the user, or in a cleared chat)
            log.info("operation %s: result message gone: %s", found.operation_id, exc)
    if found.file_id is None:
        await message.answer(t("bot-op-link-gone", lang))
    elif found.photo:
        await message.answer_photo(found.file_id, caption=words)
    else:
        await message.answer_document(found.file_id, caption=words)


def create_router() -> Router:
    """A fresh router (a dispatcher per test or process: a router has one parent)."""
    router = Router(name="start")
    router.message.register(
        cmd_start_operation,
        CommandStart(deep_link=True, magic=F.args.regexp(OP_LINK_PATTERN)),
    )
    router.message.register(cmd_start, CommandStart())
    router.message.register(cmd_menu, Command("menu"))
    router.message.register(cmd_help, Command("help"))
    router.callback_query.register(show_menu, Menu.filter(F.action == "main"))
    router.callback_query.register(show_help, Menu.filter(F.action == "help"))
    return router
