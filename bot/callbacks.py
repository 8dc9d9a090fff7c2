"""Inline-button payloads. Ids of choices only, never trusted values (64 bytes at most).

A forged or outdated payload either does not unpack (the filter does not match and the
fallback router answers "this button no longer works") or names a choice that does not
exist (the handler refuses it); an amount is never read from a button.
"""

from __future__ import annotations

from typing import Annotated

from aiogram.filters.callback_data import CallbackData
from pydantic import BeforeValidator

from billing.bounds import parse_id


def _row_id(value: object) -> int:
    """A database id in its plain form: a forged "pay:99999999999999999999", "pay:-1" or
    "pay:١" does not unpack (and gets "this button no longer works") instead of reaching the
    database as a number past its columns."""
    number = parse_id(value)
    if number is None:
        raise ValueError("not a row id")
    return number


def _index(value: object) -> int:
    """A small list index (0 … 999), in plain ASCII digits."""
    if value == "0" or (type(value) is int and value == 0):
        return 0
    number = parse_id(value)
    if number is None or number >= 1000:
        raise ValueError("not an index")
    return number


RowId = Annotated[int, BeforeValidator(_row_id)]
Index = Annotated[int, BeforeValidator(_index)]


class Menu(CallbackData, prefix="menu"):
    """Main-menu navigation: a mode name, "topup", "help" or "main"."""

    action: str


class TopUp(CallbackData, prefix="top"):
    """A top-up preset, by its INDEX in settings.TOPUP_PRESETS_RUB."""

    index: Index


class TopUpAction(CallbackData, prefix="topa"):
    """The other top-up buttons: "custom" (another amount) or "cancel"."""

    action: str


class CheckPayment(CallbackData, prefix="pay"):
    """ "Проверить оплату" for one of the user's own payments (ownership checked)."""

    payment_id: RowId
