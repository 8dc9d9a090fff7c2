"""Inline keyboards. Button texts come from the catalogue; payloads from bot.callbacks."""

from __future__ import annotations

from collections.abc import Collection

from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    MenuButtonDefault,
    MenuButtonWebApp,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    WebAppInfo,
)
from aiogram.utils.keyboard import InlineKeyboardBuilder

from billing.ai_models import Catalogue, default_catalogue
from billing.models import PlanKind
from billing.prices import format_rub
from billing.settings import Settings
from billing.wallet import PlanInfo, Wallet
from bot.callbacks import (
    AutoRenew,
    CheckPayment,
    ConfirmCharge,
    HistoryPage,
    Menu,
    PlanAction,
    SettingsToggle,
    StarsPack,
    TopUp,
    TopUpAction,
)
from jobqueue import catalogue
from texts.i18n import DEFAULT_LANGUAGE, t

LOCK = "🔒 "


def modes() -> tuple[str, ...]:
    """Every media mode (one per catalogue entry), in menu order."""
    return tuple(entry.type.value for entry in catalogue.entries())


def available_modes(settings: Settings, models: Catalogue | None = None) -> tuple[str, ...]:
    """The modes offered, as the model catalogue says (``models``, read by the handler;
    without it, the defaults): enabled, and run by their model, or by their local fallback
    when the model's backend is not configured (no FAL_KEY); a mode with neither is not."""
    return (models or default_catalogue()).offered(settings, modes())


def _button(text: str, data: CallbackData) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data.pack())


def main_menu(
    lang: str,
    settings: Settings,
    locked: Collection[str] = frozenset(),
    models: Catalogue | None = None,
) -> InlineKeyboardMarkup:
    """The modes offered (🔒 on those the user's plans do not unlock: a tap says which plans
    do), then 💰 and 📋."""
    builder = InlineKeyboardBuilder()
    for mode in available_modes(settings, models):
        label = t(f"bot-btn-{mode}", lang)
        builder.add(_button(LOCK + label if mode in locked else label, Menu(action=mode)))
    builder.adjust(2)
    builder.row(
        _button(t("bot-btn-topup", lang), Menu(action="topup")),
        _button(t("bot-btn-plans", lang), Menu(action="plans")),
    )
    return builder.as_markup()


def back_to_menu(lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[_button(t("bot-btn-menu", lang), Menu(action="main"))]]
    )


def queued_keyboard(
    lang: str, *, close: bool = False
) -> InlineKeyboardMarkup | ReplyKeyboardRemove:
    """Under "queued": 🏠 Меню; or, after the "➕ Добавить / ✅ Готово" keyboard (``close``),
    nothing, which takes that keyboard away (a message carries one keyboard)."""
    return ReplyKeyboardRemove() if close else back_to_menu(lang)


def several_keyboard(lang: str) -> ReplyKeyboardMarkup:
    """ "➕ Добавить / ✅ Готово" of a mode that takes several photos: the buttons send their
    labels as messages, so the charge is keyed by a message, as every charge is; it hides
    once tapped."""
    return ReplyKeyboardMarkup(
        keyboard=[
            [
                KeyboardButton(text=t("bot-btn-add-photo", lang)),
                KeyboardButton(text=t("bot-btn-done", lang)),
            ]
        ],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


def answer_keyboard(
    kind: str | None, lang: str
) -> InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove:
    """The keyboard of an input check's answer (``bot.inputs.Answer.keyboard``)."""
    if kind == "several":
        return several_keyboard(lang)
    if kind == "remove":
        return ReplyKeyboardRemove()
    return back_to_menu(lang)


def insufficient_keyboard(lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_button(t("bot-btn-topup-now", lang), Menu(action="topup"))],
            [_button(t("plans-btn-show", lang), Menu(action="plans"))],
            [_button(t("bot-btn-menu", lang), Menu(action="main"))],
        ]
    )


def webapp_url(base: str, page: str) -> str:
    """The Mini App's page ``page`` (balance, plans, history…): a query parameter, as
    Telegram puts its launch parameters in the fragment."""
    return f"{base}{'&' if '?' in base else '?'}page={page}"


def webapp_menu_button(lang: str, webapp_url: str) -> MenuButtonWebApp:
    """The chat's menu button that opens the Mini App, in ``lang``."""
    return MenuButtonWebApp(
        text=t("bot-btn-webapp-menu", lang), web_app=WebAppInfo(url=webapp_url)
    )


def chat_menu_button(lang: str, webapp_url: str) -> MenuButtonWebApp | MenuButtonDefault:
    """What /start sets as a chat's own menu button: the Mini App's in the user's language,
    or for the default language none of its own (the bot's default, set at start-up in
    that language: a user whose Telegram went back to it gets it again)."""
    if lang == DEFAULT_LANGUAGE:
        return MenuButtonDefault()
    return webapp_menu_button(lang, webapp_url)


def with_webapp(
    markup: InlineKeyboardMarkup, lang: str, base: str | None, page: str
) -> InlineKeyboardMarkup:
    """``markup`` with a first row that opens the Mini App on ``page``, when WEBAPP_URL is
    set (``base``); else ``markup`` as it is."""
    if not base:
        return markup
    button = InlineKeyboardButton(
        text=t("bot-btn-webapp", lang), web_app=WebAppInfo(url=webapp_url(base, page))
    )
    return InlineKeyboardMarkup(inline_keyboard=[[button], *markup.inline_keyboard])


def balance_keyboard(lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_button(t("bot-btn-topup-now", lang), Menu(action="topup"))],
            [
                _button(t("plans-btn-show", lang), Menu(action="plans")),
                _button(t("plans-btn-history", lang), Menu(action="history")),
            ],
            [_button(t("bot-btn-menu", lang), Menu(action="main"))],
        ]
    )


def topup_menu(lang: str, settings: Settings, *, yookassa: bool = True) -> InlineKeyboardMarkup:
    """The ways to pay, in PAYMENT_METHODS' order: YooKassa's ruble presets and "another
    amount" (``yookassa``: offered and configured), the Stars packs with what each credits."""
    builder = InlineKeyboardBuilder()
    for method in settings.PAYMENT_METHODS:
        if method == "yookassa" and yookassa:
            presets = InlineKeyboardBuilder()
            for index, rubles in enumerate(settings.TOPUP_PRESETS_RUB):
                text = t("bot-btn-amount", lang, amount=str(rubles))
                presets.add(_button(text, TopUp(index=index)))
            presets.adjust(2)
            builder.attach(presets)
            builder.row(_button(t("bot-btn-custom-amount", lang), TopUpAction(action="custom")))
        elif method == "stars":
            packs = InlineKeyboardBuilder()
            for index, stars in enumerate(settings.STARS_PACKS):
                credits = format_rub(settings.stars_kopecks(stars))
                text = t("bot-btn-stars-pack", lang, stars=stars, amount=credits)
                packs.add(_button(text, StarsPack(index=index)))
            packs.adjust(2)
            builder.attach(packs)
    builder.row(_button(t("bot-btn-cancel", lang), TopUpAction(action="cancel")))
    return builder.as_markup()


def cancel_keyboard(lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[_button(t("bot-btn-cancel", lang), TopUpAction(action="cancel"))]]
    )


def payment_keyboard(lang: str, url: str, payment_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=t("bot-btn-pay", lang), url=url)],
            [_button(t("bot-btn-check-payment", lang), CheckPayment(payment_id=payment_id))],
            [_button(t("bot-btn-menu", lang), Menu(action="main"))],
        ]
    )


# -- plans -----------------------------------------------------------------------------------


def plans_keyboard(
    lang: str, held: Wallet, plans: list[PlanInfo], *, topup: bool
) -> InlineKeyboardMarkup:
    """/plans: one button per plan on sale (its card), auto-renewal of the user's
    subscription, top-up, history, menu."""
    builder = InlineKeyboardBuilder()
    current = held.subscription.plan.id if held.subscription is not None else None
    for plan in plans:
        if plan.is_default:
            continue
        if plan.id == current:
            text = t("plans-btn-current", lang, name=plan.name(lang))
        else:
            text = t("plans-btn-plan", lang, name=plan.name(lang), price=format_rub(plan.price))
        builder.row(_button(text, PlanAction(action="card", code=plan.code)))
    sub = held.subscription
    if sub is not None and not sub.plan.archived:
        key = "plans-btn-autorenew-off" if sub.auto_renew else "plans-btn-autorenew-on"
        builder.row(_button(t(key, lang), AutoRenew(on=not sub.auto_renew)))
    if topup:
        builder.row(_button(t("bot-btn-topup-now", lang), Menu(action="topup")))
    builder.row(
        _button(t("plans-btn-history", lang), Menu(action="history")),
        _button(t("bot-btn-menu", lang), Menu(action="main")),
    )
    return builder.as_markup()


def _pay_stars(
    lang: str, plan: PlanInfo, stars: int | None, key: str
) -> list[list[InlineKeyboardButton]]:
    """⭐ Pay N Stars for a plan (``stars``: its price in ⭐; None: Stars not offered)."""
    if stars is None or plan.price <= 0:
        return []
    return [
        [
            _button(
                t("plans-btn-pay-stars", lang, stars=stars),
                PlanAction(action="stars", code=plan.code, key=key),
            )
        ]
    ]


def plan_card_keyboard(
    lang: str,
    plan: PlanInfo,
    held: Wallet,
    *,
    card_payments: bool,
    key: str,
    stars: int | None = None,
) -> InlineKeyboardMarkup:
    """A plan's card: buy from the balance, pay by card, pay in Stars (``stars``: the price
    in ⭐ when Stars are offered) — or, for another subscription while one is active, switch
    from the next period."""
    rows: list[list[InlineKeyboardButton]] = []
    sub = held.subscription
    price = format_rub(plan.price)
    if plan.archived or plan.is_default:
        pass
    elif plan.kind == PlanKind.SUBSCRIPTION and sub is not None:
        if sub.plan.id != plan.id:
            rows.append(
                [_button(t("plans-btn-change", lang), PlanAction(action="change", code=plan.code))]
            )
    else:
        rows.append(
            [
                _button(
                    t("plans-btn-buy-balance", lang, price=price),
                    PlanAction(action="buy", code=plan.code, key=key),
                )
            ]
        )
        if card_payments and plan.price > 0:
            rows.append(
                [
                    _button(
                        t("plans-btn-pay-card", lang, price=price),
                        PlanAction(action="pay", code=plan.code, key=key),
                    )
                ]
            )
        rows += _pay_stars(lang, plan, stars, key)
    rows.append([_button(t("plans-btn-back", lang), Menu(action="plans"))])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def plan_short_keyboard(
    lang: str, plan: PlanInfo, *, card_payments: bool, key: str, stars: int | None = None
) -> InlineKeyboardMarkup:
    """Not enough on the balance for a plan: top up, pay for it by card or in Stars."""
    rows = [[_button(t("bot-btn-topup-now", lang), Menu(action="topup"))]]
    if card_payments:
        rows.append(
            [
                _button(
                    t("plans-btn-pay-card", lang, price=format_rub(plan.price)),
                    PlanAction(action="pay", code=plan.code, key=key),
                )
            ]
        )
    rows += _pay_stars(lang, plan, stars, key)
    rows.append([_button(t("plans-btn-back", lang), Menu(action="plans"))])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def show_plans_keyboard(lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_button(t("plans-btn-show", lang), Menu(action="plans"))],
            [_button(t("bot-btn-menu", lang), Menu(action="main"))],
        ]
    )


def confirm_keyboard(lang: str, token: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _button(t("plans-btn-confirm", lang), ConfirmCharge(token=token, ok=True)),
                _button(t("plans-btn-cancel", lang), ConfirmCharge(token=token, ok=False)),
            ]
        ]
    )


def history_keyboard(
    lang: str, *, newer_than: int | None, older_than: int | None
) -> InlineKeyboardMarkup:
    """◀ newer / older ▶ (each only when there is such a page), then the menu."""
    nav = []
    if newer_than is not None:
        nav.append(_button(t("plans-history-newer", lang), HistoryPage(way="n", ref=newer_than)))
    if older_than is not None:
        nav.append(_button(t("plans-history-older", lang), HistoryPage(way="o", ref=older_than)))
    rows = [nav] if nav else []
    rows.append([_button(t("bot-btn-menu", lang), Menu(action="main"))])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def settings_keyboard(lang: str, *, confirm: bool) -> InlineKeyboardMarkup:
    toggle = (
        _button(t("plans-btn-confirm-off", lang), SettingsToggle(confirm=False))
        if confirm
        else _button(t("plans-btn-confirm-on", lang), SettingsToggle(confirm=True))
    )
    return InlineKeyboardMarkup(
        inline_keyboard=[[toggle], [_button(t("bot-btn-menu", lang), Menu(action="main"))]]
    )


def plan_done_keyboard(lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_button(t("plans-btn-back", lang), Menu(action="plans"))],
            [_button(t("bot-btn-menu", lang), Menu(action="main"))],
        ]
    )
