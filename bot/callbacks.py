"""Inline-button payloads. Ids of choices only, never trusted values (64 bytes at most).

A forged or outdated payload either does not unpack (the filter does not match and the
fallback router answers "this button no longer works") or names a choice that does not
exist (the handler refuses it); an amount is never read from a button.
"""

from __future__ import annotations

import re
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


PLAN_CODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
TOKEN = re.compile(r"[0-9a-f]{16,32}")


def _plan_code(value: object) -> str:
    """A plan's code (the catalogue's slug): looked up, never trusted; anything else does not
    unpack."""
    if not isinstance(value, str) or not PLAN_CODE.fullmatch(value):
        raise ValueError("not a plan code")
    return value


def _token(value: object) -> str:
    if not isinstance(value, str) or not TOKEN.fullmatch(value):
        raise ValueError("not a token")
    return value


def _nonce(value: object) -> str:
    """A card's one-time key, or nothing (the buttons that need none)."""
    if value == "" or value is None:
        return ""
    return _token(value)


RowId = Annotated[int, BeforeValidator(_row_id)]
Index = Annotated[int, BeforeValidator(_index)]
PlanCode = Annotated[str, BeforeValidator(_plan_code)]
Token = Annotated[str, BeforeValidator(_token)]
Nonce = Annotated[str, BeforeValidator(_nonce)]


class Menu(CallbackData, prefix="menu"):
    """Main-menu navigation: a mode name, "topup", "help", "main", "plans", "history" or
    "settings" (``tg.buttons`` spells two of them for the worker's messages)."""

    action: str


class TopUp(CallbackData, prefix="top"):
    """A top-up preset, by its INDEX in settings.TOPUP_PRESETS_RUB."""

    index: Index


class StarsPack(CallbackData, prefix="star"):
    """A Stars pack, by its INDEX in settings.STARS_PACKS."""

    index: Index


class TopUpAction(CallbackData, prefix="topa"):
    """The other top-up buttons: "custom" (another amount) or "cancel"."""

    action: str


class CheckPayment(CallbackData, prefix="pay"):
    """ "Проверить оплату" for one of the user's own payments (ownership checked)."""

    payment_id: RowId


class PlanAction(CallbackData, prefix="plan"):
    """A plan of the catalogue, by code: "card" (what it gives, how to buy), "buy" (from the
    balance), "pay" (by YooKassa), "stars" (a Telegram Stars invoice), "change" (the
    subscription from the next period).

    ``key``: a random key each showing of a card gives its buy / pay buttons, so a double tap
    (or a re-delivered press) buys once and opens one payment; the card shown again buys
    again."""

    action: str
    code: PlanCode
    key: Nonce = ""


class AutoRenew(CallbackData, prefix="renew"):
    """Auto-renewal of the user's own subscription: on or off."""

    on: bool


class HistoryPage(CallbackData, prefix="hist"):
    """A page of /history: "o" — the entries older than ``ref``, "n" — newer than it."""

    way: str
    ref: RowId


class ConfirmCharge(CallbackData, prefix="cf"):
    """Подтвердить / Отмена of a charge waiting for the user (its input kept under
    ``token`` in Redis, bot.confirm)."""

    token: Token
    ok: bool


class SettingsToggle(CallbackData, prefix="set"):
    """/settings: confirm before a charge, on or off."""

    confirm: bool
