"""Inline-button payloads. Ids of choices only, never trusted values (64 bytes at most).

A forged or outdated payload either does not unpack (the filter does not match and the
fallback router answers "this button no longer works") or names a choice that does not
exist (the handler refuses it); an amount is never read from a button.
"""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class Menu(CallbackData, prefix="menu"):
    """Main-menu navigation: a mode name, "topup", "help" or "main"."""

    action: str


class TopUp(CallbackData, prefix="top"):
    """A top-up preset, by its INDEX in settings.TOPUP_PRESETS_RUB."""

    index: int


class TopUpAction(CallbackData, prefix="topa"):
    """The other top-up buttons: "custom" (another amount) or "cancel"."""

    action: str


class CheckPayment(CallbackData, prefix="pay"):
    """ "Проверить оплату" for one of the user's own payments (ownership checked)."""

    payment_id: int
