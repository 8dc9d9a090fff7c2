"""What users are told about their plans: bought through YooKassa, renewed, changed, ended,
expired (texts/locales/<lang>/plan_notices.ftl).

The same words whoever tells them: the web server or the bot right after a plan's payment
was credited (:func:`plan_payment_text`, from the credit's own result), the renewal pass,
and a worker's maintenance pass sending a recorded notice (:func:`plan_notice_text`, from
the ``payment_notices`` row and the plan it names).
"""

from __future__ import annotations

from datetime import datetime

from billing.models import NoticeKind, PlanKind
from billing.notices import PlanFacts
from billing.plans import PlanPaymentNote
from billing.prices import format_rub
from texts.i18n import pick_language, t
from texts.wallet_texts import date_text

PLAN_KINDS = frozenset(
    {
        NoticeKind.PLAN_BOUGHT,
        NoticeKind.PLAN_SCHEDULED,
        NoticeKind.PLAN_NOT_BOUGHT,
        NoticeKind.PLAN_RENEWED,
        NoticeKind.PLAN_CHANGED,
        NoticeKind.PLAN_ENDED,
        NoticeKind.PACKAGE_EXPIRED,
    }
)
WHY = ("archived", "no_money", "default", "not_found")
ENDED = ("no_money", "canceled", "archived")


def format_date(moment: datetime | None, language: str | None) -> str:
    """A period's end as the user reads it: the day, on the same clock as /plans shows."""
    if moment is None:
        return "—"
    return date_text(moment, pick_language(language))


def wants_topup_button(kind: NoticeKind, reason: str | None) -> bool:
    """A subscription that ended for want of money: the message carries a top-up button."""
    return kind is NoticeKind.PLAN_ENDED and reason == "no_money"


def _text(
    kind: NoticeKind,
    *,
    language: str | None,
    plan: str,
    package: bool,
    units: int,
    ends_at: datetime | None,
    amount: int,
    balance: int,
    reason: str | None,
) -> str:
    args = {
        "plan": plan,
        "operations": t("plan-notice-operations", language, units=units),
        "ends": format_date(ends_at, language),
        "amount": format_rub(amount),
        "balance": format_rub(balance),
    }
    if kind is NoticeKind.PLAN_BOUGHT:
        if reason == "trial":
            key = "plan-notice-bought-trial"
        elif package:
            key = "plan-notice-bought-package" if ends_at else "plan-notice-bought-package-forever"
        else:
            key = "plan-notice-bought-subscription"
    elif kind is NoticeKind.PLAN_SCHEDULED:
        key = (
            "plan-notice-already-active" if reason == "already_active" else "plan-notice-scheduled"
        )
    elif kind is NoticeKind.PLAN_NOT_BOUGHT:
        key = "plan-notice-not-bought"
        args["why"] = t(f"plan-notice-why-{reason if reason in WHY else 'not_found'}", language)
    elif kind is NoticeKind.PLAN_RENEWED:
        key = "plan-notice-renewed"
    elif kind is NoticeKind.PLAN_CHANGED:
        key = "plan-notice-changed-trial" if reason == "trial" else "plan-notice-changed"
    elif kind is NoticeKind.PLAN_ENDED:
        key = f"plan-notice-ended-{reason if reason in ENDED else 'canceled'}"
    elif kind is NoticeKind.PACKAGE_EXPIRED:
        key = "plan-notice-package-expired"
    else:
        raise ValueError(f"not a plan's message: {kind}")
    return t(key, language, **args)


def plan_notice_text(
    *,
    kind: NoticeKind,
    plan: PlanFacts | None,
    amount: int,
    balance_after: int | None,
    reason: str | None,
    language: str | None,
) -> str:
    """A recorded plan's message (``payment_notices`` + :func:`billing.notices.plan_facts`)."""
    return _text(
        kind,
        language=language,
        plan=plan.name(language) if plan else "—",
        package=bool(plan and plan.kind == PlanKind.PACKAGE),
        units=plan.units if plan else 0,
        ends_at=plan.ends_at if plan else None,
        amount=amount,
        balance=balance_after or 0,
        reason=reason,
    )


def plan_payment_text(note: PlanPaymentNote, *, amount: int, language: str | None) -> str:
    """The message of a plan's payment, right after its credit (the same words as the
    recorded notice the maintenance pass would send)."""
    return _text(
        note.kind,
        language=language,
        plan=note.name(language),
        package=note.plan_kind == PlanKind.PACKAGE,
        units=note.units,
        ends_at=note.ends_at,
        amount=amount,
        balance=note.balance_after,
        reason=note.reason,
    )
