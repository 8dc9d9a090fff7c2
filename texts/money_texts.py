"""What users are told about their money: credited, canceled (and why), refunded.

The same words whoever tells them: the web server after a notification, the bot when the
user checks a payment, a worker's maintenance pass sending a notice the web never got out.
"""

from __future__ import annotations

from typing import NamedTuple

from billing.models import NoticeKind
from billing.notices import ClaimedNotice, PlanFacts
from billing.prices import format_rub
from billing.settings import Settings
from texts.i18n import t
from texts.plan_texts import PLAN_KINDS, plan_notice_text, wants_topup_button

# YooKassa's documented cancellation_details.reason codes, each with its own plain-words text.
CANCELLATION_REASONS = frozenset(
    {
        "3d_secure_failed",
        "call_issuer",
        "canceled_by_merchant",
        "card_expired",
        "country_forbidden",
        "deal_expired",
        "expired_on_capture",
        "expired_on_confirmation",
        "fraud_suspected",
        "general_decline",
        "identification_required",
        "insufficient_funds",
        "internal_timeout",
        "invalid_card_number",
        "invalid_csc",
        "issuer_unavailable",
        "payment_method_limit_exceeded",
        "payment_method_restricted",
        "permission_revoked",
        "unsupported_mobile_operator",
    }
)


def cancellation_text(reason: str | None, language: str | None) -> str:
    """Why a payment was canceled, in the user's words; an unknown code gets a generic text."""
    key = reason if reason in CANCELLATION_REASONS else "unknown"
    return t(f"web-cancel-reason-{key}", language)


def credited_text(*, amount: int, balance: int, language: str | None) -> str:
    return t(
        "web-topup-credited", language, amount=format_rub(amount), balance=format_rub(balance)
    )


def canceled_text(*, amount: int, reason: str | None, language: str | None) -> str:
    return t(
        "web-payment-canceled",
        language,
        amount=format_rub(amount),
        reason=cancellation_text(reason, language),
    )


def refunded_text(
    *, amount: int, balance: int, language: str | None, via: str | None = None
) -> str:
    """``via``: None for YooKassa (to the card), "stars" for a Telegram Stars charge."""
    key = "web-payment-refunded-stars" if via == "stars" else "web-payment-refunded"
    key += "-debt" if balance < 0 else ""
    return t(key, language, amount=format_rub(amount), balance=format_rub(balance))


def notice_text(
    *,
    kind: NoticeKind,
    amount: int,
    balance_after: int | None,
    reason: str | None,
    language: str | None,
    plan: PlanFacts | None = None,
) -> str:
    """The text of a recorded notice (``payment_notices``): the same words the web sends.
    A plan's message (``plan``: what it names) is worded by :mod:`texts.plan_texts`."""
    if kind in PLAN_KINDS:
        return plan_notice_text(
            kind=kind,
            plan=plan,
            amount=amount,
            balance_after=balance_after,
            reason=reason,
            language=language,
        )
    if kind is NoticeKind.CREDITED:
        return credited_text(amount=amount, balance=balance_after or 0, language=language)
    if kind is NoticeKind.CANCELED:
        return canceled_text(amount=amount, reason=reason, language=language)
    return refunded_text(amount=amount, balance=balance_after or 0, language=language, via=reason)


def claimed_notice_words(claimed: ClaimedNotice) -> tuple[str, str | None]:
    """The words of a claimed notice, in the user's current language: its text, and the
    label of its top-up button when it carries one (a subscription that ended for want of
    money). The sender (:mod:`tg.notices`) puts the button under it."""
    text = notice_text(
        kind=claimed.kind,
        amount=claimed.amount,
        balance_after=claimed.balance_after,
        reason=claimed.reason,
        language=claimed.language,
        plan=claimed.plan,
    )
    if not wants_topup_button(claimed.kind, claimed.reason):
        return text, None
    return text, t("bot-btn-topup-now", claimed.language)


class InvoiceText(NamedTuple):
    """The words of a Telegram Stars invoice (``tg.invoices``)."""

    title: str
    description: str
    label: str


def pack_invoice_text(settings: Settings, stars: int, language: str | None) -> InvoiceText:
    """A Stars pack's invoice: what it credits."""
    amount = format_rub(settings.stars_kopecks(stars))
    return InvoiceText(
        t("bot-stars-title", language, amount=amount),
        t("bot-stars-description", language, stars=stars, amount=amount),
        t("bot-stars-label", language, amount=amount),
    )


def plan_invoice_text(
    settings: Settings, *, name: str, price: int, stars: int, language: str | None
) -> InvoiceText:
    """A plan's Stars invoice: the plan, its price, and what the ⭐ credit (the price
    rounded up to whole ⭐; the rest stays on the balance)."""
    credits = format_rub(settings.stars_kopecks(stars))
    return InvoiceText(
        t("bot-stars-plan-title", language, name=name),
        t(
            "bot-stars-plan-description",
            language,
            name=name,
            stars=stars,
            price=format_rub(price),
            amount=credits,
        ),
        t("bot-stars-plan-label", language, name=name),
    )
