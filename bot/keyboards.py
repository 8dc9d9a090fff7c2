"""Inline keyboards. Button texts come from the catalogue; payloads from bot.callbacks."""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from billing.settings import Settings
from bot.callbacks import CheckPayment, Menu, TopUp, TopUpAction
from jobqueue import catalogue
from texts.i18n import t


def modes() -> tuple[str, ...]:
    """Every media mode (one per catalogue entry), in menu order."""
    return tuple(entry.type.value for entry in catalogue.entries())


def available_modes(settings: Settings) -> tuple[str, ...]:
    """The modes offered: an entry with a backend only when that backend is configured."""
    return tuple(
        entry.type.value
        for entry in catalogue.entries()
        if entry.backend is None or getattr(settings, f"{entry.backend}_configured")
    )


def _button(text: str, data: Menu | TopUp | TopUpAction | CheckPayment) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data.pack())


def main_menu(lang: str, settings: Settings) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for mode in available_modes(settings):
        builder.add(_button(t(f"bot-btn-{mode}", lang), Menu(action=mode)))
    builder.adjust(2)
    builder.row(_button(t("bot-btn-topup", lang), Menu(action="topup")))
    return builder.as_markup()


def back_to_menu(lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[_button(t("bot-btn-menu", lang), Menu(action="main"))]]
    )


def queued_keyboard(lang: str) -> InlineKeyboardMarkup:
    return back_to_menu(lang)


def insufficient_keyboard(lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_button(t("bot-btn-topup-now", lang), Menu(action="topup"))],
            [_button(t("bot-btn-menu", lang), Menu(action="main"))],
        ]
    )


def balance_keyboard(lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_button(t("bot-btn-topup-now", lang), Menu(action="topup"))],
            [_button(t("bot-btn-menu", lang), Menu(action="main"))],
        ]
    )


def topup_menu(lang: str, settings: Settings) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for index, rubles in enumerate(settings.TOPUP_PRESETS_RUB):
        builder.add(_button(t("bot-btn-amount", lang, amount=str(rubles)), TopUp(index=index)))
    builder.adjust(2)
    builder.row(_button(t("bot-btn-custom-amount", lang), TopUpAction(action="custom")))
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
