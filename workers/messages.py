"""The worker's texts: the result caption and the failure / refund notice (workers.ftl)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from billing.models import Funding
from billing.operations import RefundResult
from billing.prices import format_rub
from imaging._image import MediaResult
from texts import wallet_texts
from texts.edit_texts import describe_steps_code
from texts.i18n import MissingText, t
from tg.buttons import MENU_PLANS, RESULT_FILE, one_button
from workers.failures import Failure


def _args(params: Mapping[str, Any]) -> dict[str, str]:
    # Strings, not numbers: Fluent would group digits ("2 048"); escaped for HTML parse mode.
    return {key: html.escape(str(value), quote=False) for key, value in params.items()}


def processing(language: str) -> str:
    return t("worker-processing", language)


def what_was_done(result: MediaResult, language: str) -> str:
    args = _args(result.params)
    if result.op == "edit" and "steps" in result.params:  # imaging gives the steps as codes
        args["steps"] = html.escape(
            describe_steps_code(str(result.params["steps"]), language), quote=False
        )
    try:
        done = t(result.description_key, language, **args)
    except (MissingText, ValueError):
        return t("media-result-noop", language)
    if args.get("missing"):  # 📝: characters the font could not draw were left out
        done += "\n" + t("media-result-missing-glyphs", language, characters=args["missing"])
    return done


def cost_line(
    *,
    funding: str,
    price: int,
    balance: int,
    free_left: int,
    language: str,
    units: int = 0,
    units_left: int | None = None,
) -> str:
    rub = format_rub(balance)
    if funding == Funding.BALANCE:
        return t("worker-cost-balance", language, price=format_rub(price), balance=rub)
    if funding == Funding.FREE:
        return t("worker-cost-free", language, free_left=str(free_left), balance=rub)
    if funding in (Funding.SUBSCRIPTION, Funding.PACKAGE):
        return t(
            f"worker-cost-{funding}",
            language,
            units=wallet_texts.ops(units, language),  # "2 операции", as the bot says
            units_left=str(units_left if units_left is not None else 0),
            balance=rub,
        )
    return t("worker-cost-none", language, balance=rub)


def result_caption(
    result: MediaResult,
    *,
    funding: str,
    price: int,
    balance: int,
    free_left: int,
    language: str,
    units: int = 0,
    units_left: int | None = None,
    offer: str | None = None,
) -> str:
    """What was done, what it cost, what is left (balance and free operations, kopecks; the
    plan's units), and the plans offer when it is due (one line, at most once a day)."""
    lines = [
        what_was_done(result, language),
        cost_line(
            funding=funding,
            price=price,
            balance=balance,
            free_left=free_left,
            language=language,
            units=units,
            units_left=units_left,
        ),
    ]
    if offer:
        lines.append(offer)
    return "\n".join(lines)


def offer_line(free_left: int, language: str) -> str:
    """The plans offer under a result (seed 001): the free operations are running out."""
    return wallet_texts.offer_text(free_left, language)


def offer_keyboard(language: str) -> InlineKeyboardMarkup:
    """📋 Планы under the result: the bot answers it (its payload is tg.buttons')."""
    return one_button(t("plans-btn-show", language), MENU_PLANS)


def file_button(language: str) -> InlineKeyboardButton:
    """📎 Файл без сжатия under a result: the bot answers it (its payload is tg.buttons')."""
    return InlineKeyboardButton(text=t("worker-btn-file", language), callback_data=RESULT_FILE)


def failure_reason(failure: Failure, language: str) -> str:
    args = _args(failure.params)
    args.setdefault("which", "other")
    args.setdefault("limit_mb", "20")
    try:
        return t(f"worker-reason-{failure.reason}", language, **args)
    except MissingText:
        return t("worker-reason-internal", language)


def refund_line(refund: RefundResult, language: str) -> str:
    if refund.funding is Funding.BALANCE:
        return t(
            "worker-refunded-balance",
            language,
            amount=format_rub(refund.amount),
            balance=format_rub(refund.balance_after),
        )
    if refund.funding is Funding.FREE:
        return t("worker-refunded-free", language, free_left=str(refund.free_after))
    if refund.funding in (Funding.SUBSCRIPTION, Funding.PACKAGE):
        if refund.not_carried is not None:  # period_over / plan_ended
            return t(f"worker-refunded-{refund.not_carried.replace('_', '-')}", language)
        left = refund.units_after if refund.units_after is not None else 0
        return t(f"worker-refunded-{refund.funding}", language, units_left=str(left))
    return t("worker-refunded-none", language)


def failure_notice(failure: Failure, refund: RefundResult, language: str) -> str:
    """ "❌ Не получилось: <why>" and what came back."""
    return "\n".join(
        (
            t("worker-failed", language, reason=failure_reason(failure, language)),
            refund_line(refund, language),
        )
    )
