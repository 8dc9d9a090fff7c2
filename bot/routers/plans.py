"""📋 /plans (what the user holds, the plans to buy, buying, auto-renewal, a change of plan),
🧾 /history (the user's own ledger, a page at a time) and ⚙️ /settings (confirm charges).

What the user holds is read by :mod:`billing.wallet` after the periods that are due were
rolled over (``billing.plans.roll_over``): a period that ended a minute ago shows as renewed
(or ended), never as last period's quota. Buying goes through :mod:`billing.plans` only: from
the balance (one transaction) or by a YooKassa payment whose credit buys the plan.
"""

from __future__ import annotations

import logging

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, User
from sqlalchemy.ext.asyncio import AsyncSession

from billing import accounts, plans, wallet
from billing.prices import format_rub
from billing.settings import Settings
from billing.yookassa import YooKassaGateway
from bot.callbacks import HistoryPage, Menu, PlanAction, SettingsToggle
from bot.keyboards import (
    available_modes,
    history_keyboard,
    plan_card_keyboard,
    plans_keyboard,
    settings_keyboard,
)
from bot.users import ensure_user
from texts import wallet_texts
from texts.i18n import t

log = logging.getLogger(__name__)

HISTORY_PAGE = 10


async def roll_over(session: AsyncSession, settings: Settings, user_id: int) -> None:
    """Renew or end what is due, so the screen shows this period (committed)."""
    await plans.roll_over(session, settings, user_id=user_id)
    await session.commit()


async def current_wallet(
    session: AsyncSession, settings: Settings, user: User, lang: str
) -> wallet.Wallet:
    """The user (created if new), rolled over, and what they hold now."""
    account = await ensure_user(session, settings, user, lang)
    await roll_over(session, settings, account.id)
    held = await wallet.wallet(session, settings, user_id=account.id)
    await session.rollback()
    return held


async def plans_screen(
    session: AsyncSession,
    settings: Settings,
    user: User,
    lang: str,
    *,
    card_payments: bool,
) -> tuple[str, InlineKeyboardMarkup]:
    held = await current_wallet(session, settings, user, lang)
    on_sale = await wallet.catalogue(session)
    await session.rollback()
    lines = wallet_texts.wallet_lines(held, settings, lang)
    lines += ["", t("plans-catalogue", lang)]
    offered = [p for p in on_sale if not p.is_default]
    if offered:
        lines += [wallet_texts.plan_line(p, lang) for p in offered]
        note = wallet_texts.units_note(settings, lang, available_modes(settings))
        if note:
            lines.append(note)
        if any(p.kind == "subscription" for p in offered):
            lines.append(t("plans-change-note", lang))
    else:
        lines.append(t("plans-catalogue-empty", lang))
    keyboard = plans_keyboard(lang, held, on_sale, topup=card_payments)
    return "\n".join(lines), keyboard


async def cmd_plans(
    message: Message,
    session: AsyncSession,
    settings: Settings,
    lang: str,
    gateway: YooKassaGateway | None,
) -> None:
    """/plans: the current plan, its quota and reset, packages, then the plans to buy."""
    assert message.from_user is not None
    text, keyboard = await plans_screen(
        session, settings, message.from_user, lang, card_payments=gateway is not None
    )
    await message.answer(text, reply_markup=keyboard)


async def show_plans(
    query: CallbackQuery,
    session: AsyncSession,
    settings: Settings,
    lang: str,
    gateway: YooKassaGateway | None,
) -> None:
    """📋 (menus, the offer under a result, 🔒, "◀ Все планы")."""
    await query.answer()
    if not isinstance(query.message, Message):
        return
    text, keyboard = await plans_screen(
        session, settings, query.from_user, lang, card_payments=gateway is not None
    )
    await query.message.answer(text, reply_markup=keyboard)


async def plan_card(
    query: CallbackQuery,
    callback_data: PlanAction,
    session: AsyncSession,
    settings: Settings,
    lang: str,
    gateway: YooKassaGateway | None,
) -> None:
    """A plan's card: what it gives, and how to get it (buy, pay by card, or a change of
    subscription from the next period)."""
    plan = await _plan_on_sale(session, callback_data.code)
    if plan is None:
        await query.answer(t("plans-not-for-sale", lang), show_alert=True)
        return
    held = await current_wallet(session, settings, query.from_user, lang)
    await query.answer()
    if not isinstance(query.message, Message):
        return
    lines = [wallet_texts.plan_card(plan, lang)]
    sub = held.subscription
    if sub is not None and sub.plan.id == plan.id:
        lines.append(t("plans-card-current", lang))
    elif sub is not None and plan.kind == "subscription" and sub.ends_at is not None:
        lines.append(
            t(
                "plans-card-change",
                lang,
                current=sub.plan.name(lang),
                date=wallet_texts.date_text(sub.ends_at, lang),
                price=format_rub(plan.price),
            )
        )
    keyboard = plan_card_keyboard(lang, plan, held, card_payments=gateway is not None)
    await _show(query.message, "\n\n".join(lines), keyboard)


async def _plan_on_sale(session: AsyncSession, code: str) -> wallet.PlanInfo | None:
    found = [p for p in await wallet.catalogue(session) if p.code == code and not p.is_default]
    await session.rollback()
    return found[0] if found else None


async def _show(message: Message, text: str, keyboard: InlineKeyboardMarkup | None) -> None:
    """Edit the message in place (pages, cards); a message that cannot be edited any more
    gets a new one."""
    try:
        await message.edit_text(text, reply_markup=keyboard)
    except TelegramBadRequest as exc:
        if "not modified" in str(exc):
            return
        log.info("could not edit, sending anew: %s", exc)
        await message.answer(text, reply_markup=keyboard)


# -- /history ---------------------------------------------------------------------------------


async def history_page(
    session: AsyncSession,
    user_id: int,
    lang: str,
    *,
    older_than: int | None = None,
    newer_than: int | None = None,
) -> tuple[str, InlineKeyboardMarkup]:
    items = await wallet.history(
        session, user_id=user_id, before_id=older_than, after_id=newer_than, limit=HISTORY_PAGE
    )
    if not items and newer_than is not None:  # nothing newer any more: the newest page
        items = await wallet.history(session, user_id=user_id, limit=HISTORY_PAGE)
    if not items:
        await session.rollback()
        return t("plans-history-empty", lang), history_keyboard(
            lang, newer_than=None, older_than=None
        )
    newest, oldest = items[0].id, items[-1].id
    has_newer = await wallet.has_history(session, user_id=user_id, after_id=newest)
    has_older = await wallet.has_history(session, user_id=user_id, before_id=oldest)
    await session.rollback()
    lines = [t("plans-history-title", lang), ""]
    lines += [wallet_texts.history_line(item, lang) for item in items]
    keyboard = history_keyboard(
        lang,
        newer_than=newest if has_newer else None,
        older_than=oldest if has_older else None,
    )
    return "\n".join(lines), keyboard


async def cmd_history(
    message: Message, session: AsyncSession, settings: Settings, lang: str
) -> None:
    """/history: the newest page of the user's ledger."""
    assert message.from_user is not None
    account = await ensure_user(session, settings, message.from_user, lang)
    text, keyboard = await history_page(session, account.id, lang)
    await message.answer(text, reply_markup=keyboard)


async def show_history(
    query: CallbackQuery, session: AsyncSession, settings: Settings, lang: str
) -> None:
    await query.answer()
    account = await ensure_user(session, settings, query.from_user, lang)
    if isinstance(query.message, Message):
        text, keyboard = await history_page(session, account.id, lang)
        await query.message.answer(text, reply_markup=keyboard)


async def turn_history_page(
    query: CallbackQuery,
    callback_data: HistoryPage,
    session: AsyncSession,
    settings: Settings,
    lang: str,
) -> None:
    """◀ / ▶: the page in place. The ids are only where to start: the query reads the
    presser's own entries, so a forged id shows nobody else's."""
    await query.answer()
    account = await ensure_user(session, settings, query.from_user, lang)
    if not isinstance(query.message, Message):
        return
    if callback_data.way == "n":
        text, keyboard = await history_page(
            session, account.id, lang, newer_than=callback_data.ref
        )
    else:
        text, keyboard = await history_page(
            session, account.id, lang, older_than=callback_data.ref
        )
    await _show(query.message, text, keyboard)


# -- /settings --------------------------------------------------------------------------------


async def settings_screen(
    session: AsyncSession, settings: Settings, user: User, lang: str
) -> tuple[str, InlineKeyboardMarkup]:
    account = await ensure_user(session, settings, user, lang)
    on = await wallet.wants_confirmation(session, settings, user_id=account.id)
    await session.rollback()
    text = t("plans-settings", lang, on="yes" if on else "no")
    return text, settings_keyboard(lang, confirm=on)


async def cmd_settings(
    message: Message, session: AsyncSession, settings: Settings, lang: str
) -> None:
    assert message.from_user is not None
    text, keyboard = await settings_screen(session, settings, message.from_user, lang)
    await message.answer(text, reply_markup=keyboard)


async def show_settings(
    query: CallbackQuery, session: AsyncSession, settings: Settings, lang: str
) -> None:
    await query.answer()
    if isinstance(query.message, Message):
        text, keyboard = await settings_screen(session, settings, query.from_user, lang)
        await query.message.answer(text, reply_markup=keyboard)


async def toggle_settings(
    query: CallbackQuery,
    callback_data: SettingsToggle,
    session: AsyncSession,
    settings: Settings,
    lang: str,
) -> None:
    """Confirm before a charge: on / off (the user's own choice from now on)."""
    account = await ensure_user(session, settings, query.from_user, lang)
    await accounts.set_confirm_charges(session, user_id=account.id, on=callback_data.confirm)
    await session.commit()
    await query.answer()
    if isinstance(query.message, Message):
        text, keyboard = await settings_screen(session, settings, query.from_user, lang)
        await _show(query.message, text, keyboard)


def create_router() -> Router:
    """A fresh router (a dispatcher per test or process: a router has one parent)."""
    router = Router(name="plans")
    router.message.register(cmd_plans, Command("plans"))
    router.message.register(cmd_history, Command("history"))
    router.message.register(cmd_settings, Command("settings"))
    router.callback_query.register(show_plans, Menu.filter(F.action == "plans"))
    router.callback_query.register(show_history, Menu.filter(F.action == "history"))
    router.callback_query.register(show_settings, Menu.filter(F.action == "settings"))
    router.callback_query.register(plan_card, PlanAction.filter(F.action == "card"))
    router.callback_query.register(turn_history_page, HistoryPage.filter(F.way.in_({"n", "o"})))
    router.callback_query.register(toggle_settings, SettingsToggle.filter())
    return router
