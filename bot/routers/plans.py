"""📋 /plans (what the user holds, the plans to buy, buying, auto-renewal, a change of plan),
🧾 /history (the user's own ledger, a page at a time) and ⚙️ /settings (confirm charges).

What the user holds is read by :mod:`billing.wallet` after the periods that are due were
rolled over (``billing.plans.roll_over``): a period that ended a minute ago shows as renewed
(or ended), never as last period's quota. Buying goes through :mod:`billing.plans` only: from
the balance (one transaction), or by a YooKassa payment or a Stars invoice
(bot.routers.stars) whose credit buys the plan.
"""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, User
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing import accounts, ai_models, plans, stars, wallet
from billing.errors import DuplicateRequest, InsufficientFunds
from billing.plans import NoActiveSubscription, PlanNotForSale, PlanNotFound
from billing.prices import format_rub
from billing.settings import Settings
from billing.yookassa import YooKassaGateway
from bot import confirm
from bot.callbacks import AutoRenew, HistoryPage, Menu, PlanAction, SettingsToggle
from bot.card_payment import begin_card_payment
from bot.keyboards import (
    available_modes,
    history_keyboard,
    plan_card_keyboard,
    plan_done_keyboard,
    plan_short_keyboard,
    plans_keyboard,
    settings_keyboard,
    with_webapp,
)
from bot.once import first_delivery
from bot.plan_notices import roll_over
from bot.users import ensure_user
from texts import wallet_texts
from texts.i18n import t

log = logging.getLogger(__name__)

HISTORY_PAGE = 10


async def current_wallet(
    session: AsyncSession, settings: Settings, user: User, lang: str, bot: Bot | None = None
) -> wallet.Wallet:
    """The user (created if new), rolled over (told at once of what that did), and what
    they hold now."""
    account = await ensure_user(session, settings, user, lang)
    await roll_over(session, settings, account.id, bot)
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
    bot: Bot | None = None,
) -> tuple[str, InlineKeyboardMarkup]:
    held = await current_wallet(session, settings, user, lang, bot)
    on_sale = await wallet.catalogue(session)
    models = await ai_models.catalogue(session)
    await session.rollback()
    lines = wallet_texts.wallet_lines(held, settings, lang)
    lines += ["", t("plans-catalogue", lang)]
    offered = [p for p in on_sale if not p.is_default]
    if offered:
        lines += [wallet_texts.plan_line(p, lang) for p in offered]
        note = wallet_texts.units_note(
            settings, lang, available_modes(settings, models), models.set_units()
        )
        if note:
            lines.append(note)
        if any(p.kind == "subscription" for p in offered):
            lines.append(t("plans-change-note", lang))
    else:
        lines.append(t("plans-catalogue-empty", lang))
    keyboard = with_webapp(
        plans_keyboard(lang, held, on_sale, topup=card_payments),
        lang,
        settings.WEBAPP_URL,
        "plans",
    )
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
        session,
        settings,
        message.from_user,
        lang,
        card_payments=gateway is not None,
        bot=message.bot,
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
        session,
        settings,
        query.from_user,
        lang,
        card_payments=gateway is not None,
        bot=query.bot,
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
    held = await current_wallet(session, settings, query.from_user, lang, query.bot)
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
    keyboard = plan_card_keyboard(
        lang,
        plan,
        held,
        card_payments=gateway is not None,
        key=confirm.new_token(),
        stars=stars_price(settings, plan),
    )
    await _show(query.message, "\n\n".join(lines), keyboard)


async def buy_plan(
    query: CallbackQuery,
    callback_data: PlanAction,
    session: AsyncSession,
    settings: Settings,
    lang: str,
    gateway: YooKassaGateway | None,
) -> None:
    """💰 Купить с баланса: one transaction (billing.plans), once per card shown. Short
    balance: the price, the balance, a top-up button and the card payment."""
    if not callback_data.key:
        await query.answer(t("bot-button-outdated", lang), show_alert=True)
        return
    plan = await _plan_on_sale(session, callback_data.code)
    if plan is None:
        await query.answer(t("plans-not-for-sale", lang), show_alert=True)
        return
    account = await ensure_user(session, settings, query.from_user, lang)
    await roll_over(session, settings, account.id, query.bot)
    try:
        bought = await plans.buy_plan_from_balance(
            session,
            settings,
            user_id=account.id,
            plan_code=plan.code,
            request_key=f"tg:{query.from_user.id}:{callback_data.key}",
        )
        current = await wallet.wallet(session, settings, user_id=account.id)
        await session.commit()
    except InsufficientFunds as exc:
        await session.rollback()
        await query.answer()
        if isinstance(query.message, Message):
            card, stars = gateway is not None, stars_price(settings, plan)
            text = t(
                "plans-not-enough",
                lang,
                name=plan.name(lang),
                price=format_rub(plan.price),
                balance=format_rub(exc.balance),
                # What the buttons below offer besides a top-up.
                pay=("both" if stars else "card") if card else ("stars" if stars else "none"),
            )
            keyboard = plan_short_keyboard(
                lang, plan, card_payments=card, key=callback_data.key, stars=stars
            )
            await _show(query.message, text, keyboard)
        return
    except DuplicateRequest:
        await session.rollback()
        await query.answer(t("plans-done-already", lang))
        return
    except (PlanNotFound, PlanNotForSale):
        await session.rollback()
        await query.answer(t("plans-not-for-sale", lang), show_alert=True)
        return
    await query.answer()
    if isinstance(query.message, Message):
        text = purchase_text(bought, plan, current, lang)
        await _show(query.message, text, plan_done_keyboard(lang))


def purchase_text(
    bought: plans.PurchaseResult, plan: wallet.PlanInfo, held: wallet.Wallet, lang: str
) -> str:
    """What a purchase from the balance did, in words."""
    ends = wallet_texts.date_text(bought.ends_at, lang) if bought.ends_at else "—"
    if bought.status == plans.ALREADY_ACTIVE:
        return t("plans-already-current", lang)
    if bought.status == plans.SCHEDULED:
        current = held.subscription.plan.name(lang) if held.subscription else "—"
        return t(
            "plans-changed",
            lang,
            date=ends,
            name=plan.name(lang),
            price=format_rub(plan.price),
            per=wallet_texts.per(plan.period, lang),
            current=current,
        )
    args = {
        "name": plan.name(lang),
        "ops": wallet_texts.ops(bought.units, lang),
        "date": ends,
        "price": format_rub(bought.price),
        "balance": format_rub(bought.balance_after),
    }
    if bought.trial:
        text = t(
            "plans-bought-trial",
            lang,
            **{**args, "price": format_rub(plan.price)},
            per=wallet_texts.per(plan.period, lang),
        )
    elif plan.kind == "package":
        text = t(
            "plans-bought-package", lang, **args, until=wallet_texts.until(bought.ends_at, lang)
        )
    else:
        text = t("plans-bought-subscription", lang, **args)
    if bought.free_operations:
        free = wallet_texts.free_ops(bought.free_operations, lang)
        text += "\n" + t("plans-bought-free", lang, free=free)
    return text


async def pay_plan(
    query: CallbackQuery,
    callback_data: PlanAction,
    state: FSMContext,
    redis: Redis,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    lang: str,
    gateway: YooKassaGateway | None,
) -> None:
    """💳 Оплатить картой: a YooKassa payment of the plan's price (metadata names the plan;
    its credit buys the plan). One payment per card shown, however many taps."""
    if gateway is None:
        await query.answer(t("bot-topup-not-configured", lang), show_alert=True)
        return
    if not callback_data.key:
        await query.answer(t("bot-button-outdated", lang), show_alert=True)
        return
    plan = await _plan_on_sale(session, callback_data.code)
    if plan is None or plan.price <= 0:
        await query.answer(t("plans-not-for-sale", lang), show_alert=True)
        return
    once = f"plan-pay:{query.from_user.id}:{callback_data.key}"
    if not await first_delivery(redis, once):
        await query.answer(t("plans-done-already", lang))
        return
    await query.answer()
    if isinstance(query.message, Message):
        await begin_card_payment(
            query.message,
            query.from_user,
            plan_code=plan.code,
            state=state,
            session=session,
            sessionmaker=sessionmaker,
            settings=settings,
            lang=lang,
            gateway=gateway,
        )


async def toggle_auto_renew(
    query: CallbackQuery,
    callback_data: AutoRenew,
    session: AsyncSession,
    settings: Settings,
    lang: str,
    gateway: YooKassaGateway | None,
) -> None:
    """⏹ / 🔁: auto-renewal of the user's subscription; the /plans screen, redrawn."""
    account = await ensure_user(session, settings, query.from_user, lang)
    await roll_over(session, settings, account.id, query.bot)
    try:
        await plans.set_auto_renew(session, user_id=account.id, on=callback_data.on)
        held = await wallet.wallet(session, settings, user_id=account.id)
        await session.commit()
    except NoActiveSubscription:
        await session.rollback()
        await query.answer(t("plans-no-subscription", lang), show_alert=True)
        return
    sub = held.subscription
    assert sub is not None
    date = wallet_texts.date_text(sub.ends_at, lang) if sub.ends_at else "—"
    if callback_data.on:
        said = t("plans-autorenew-on", lang, date=date, price=format_rub(sub.plan.price))
    else:
        said = t("plans-autorenew-off", lang, name=sub.plan.name(lang), date=date)
    await query.answer(said, show_alert=True)
    if isinstance(query.message, Message):
        text, keyboard = await plans_screen(
            session,
            settings,
            query.from_user,
            lang,
            card_payments=gateway is not None,
            bot=query.bot,
        )
        await _show(query.message, text, keyboard)


async def change_plan(
    query: CallbackQuery,
    callback_data: PlanAction,
    session: AsyncSession,
    settings: Settings,
    lang: str,
) -> None:
    """🔄 Перейти со следующего периода: the subscription to renew into (no money now; at
    the renewal, the new plan's price from the balance)."""
    plan = await _plan_on_sale(session, callback_data.code)
    if plan is None:
        await query.answer(t("plans-not-for-sale", lang), show_alert=True)
        return
    account = await ensure_user(session, settings, query.from_user, lang)
    await roll_over(session, settings, account.id, query.bot)
    try:
        chosen = await plans.choose_next_plan(session, user_id=account.id, plan_code=plan.code)
        held = await wallet.wallet(session, settings, user_id=account.id)
        await session.commit()
    except NoActiveSubscription:
        await session.rollback()
        await query.answer(t("plans-no-subscription", lang), show_alert=True)
        return
    except (PlanNotFound, PlanNotForSale):
        await session.rollback()
        await query.answer(t("plans-not-for-sale", lang), show_alert=True)
        return
    await query.answer()
    if isinstance(query.message, Message):
        await _show(
            query.message, purchase_text(chosen, plan, held, lang), plan_done_keyboard(lang)
        )


def stars_price(settings: Settings, plan: wallet.PlanInfo) -> int | None:
    """The plan's price in ⭐ when Stars are offered (PAYMENT_METHODS) and one invoice can
    ask it; else None (no ⭐ button)."""
    return stars.plan_stars(settings, plan.price) if settings.stars_enabled else None


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
    """/history: the newest page of the user's ledger, after a roll-over that was due (a
    renewal or an end belongs on it)."""
    assert message.from_user is not None
    account = await ensure_user(session, settings, message.from_user, lang)
    await roll_over(session, settings, account.id, message.bot)
    text, keyboard = await history_page(session, account.id, lang)
    keyboard = with_webapp(keyboard, lang, settings.WEBAPP_URL, "history")
    await message.answer(text, reply_markup=keyboard)


async def show_history(
    query: CallbackQuery, session: AsyncSession, settings: Settings, lang: str
) -> None:
    await query.answer()
    account = await ensure_user(session, settings, query.from_user, lang)
    await roll_over(session, settings, account.id, query.bot)
    if isinstance(query.message, Message):
        text, keyboard = await history_page(session, account.id, lang)
        keyboard = with_webapp(keyboard, lang, settings.WEBAPP_URL, "history")
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
    router.callback_query.register(buy_plan, PlanAction.filter(F.action == "buy"))
    router.callback_query.register(pay_plan, PlanAction.filter(F.action == "pay"))
    router.callback_query.register(change_plan, PlanAction.filter(F.action == "change"))
    router.callback_query.register(toggle_auto_renew, AutoRenew.filter())
    router.callback_query.register(turn_history_page, HistoryPage.filter(F.way.in_({"n", "o"})))
    router.callback_query.register(toggle_settings, SettingsToggle.filter())
    return router
