"""Plans and the wallet on screen (texts/locales/<lang>/plans.ftl): what a user holds, what
a plan gives, what a charge would take, what each ledger entry was.

Shared by the bot (/plans, /balance, /history, the confirmation, 🔒) and the worker (the
offer under a result). Dates are shown on the bot's audience's clock: BOT_TIMEZONE (Moscow
by default), which each process's composition root sets once with :func:`use_timezone`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Mapping
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from billing.models import Funding, LedgerKind, PlanKind
from billing.prices import discounted, format_rub, operation_types, units_of
from billing.settings import Settings
from billing.wallet import HistoryItem, Holding, OperationItem, PlanInfo, Quote, Wallet
from texts.i18n import MissingText, t

_zone: tzinfo = ZoneInfo("Europe/Moscow")
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def use_timezone(zone: tzinfo) -> None:
    """The zone every date is shown in, from now on (settings.zone; one per process)."""
    global _zone
    _zone = zone


def date_text(moment: datetime, lang: str, zone: tzinfo | None = None) -> str:
    local = moment.astimezone(zone or _zone)
    if lang == "en":
        return f"{local.day} {_MONTHS_EN[local.month - 1]} {local.year}"
    return local.strftime("%d.%m.%Y")


def datetime_text(moment: datetime, lang: str, zone: tzinfo | None = None) -> str:
    return f"{date_text(moment, lang, zone)} {moment.astimezone(zone or _zone):%H:%M}"


def ops(count: int, lang: str) -> str:
    return t("plans-ops", lang, count=count)


def free_ops(count: int, lang: str) -> str:
    return t("plans-free-ops", lang, count=count)


def per(period: str | None, lang: str) -> str:
    return t("plans-per", lang, period=period or "month")


def mode_name(op_type: str | None, lang: str) -> str:
    return t(f"bot-btn-{op_type}", lang) if op_type else "—"


def until(ends_at: datetime | None, lang: str) -> str:
    if ends_at is None:
        return t("plans-forever", lang)
    return t("plans-until", lang, date=date_text(ends_at, lang))


# -- what a plan gives ---------------------------------------------------------------------


def _extras(plan: PlanInfo, lang: str) -> str:
    parts = []
    if plan.discount_percent:
        parts.append(t("plans-extra-discount", lang, percent=plan.discount_percent))
    if plan.unlocks is not None:
        modes = ", ".join(mode_name(m, lang) for m in plan.unlocks) or "—"
        parts.append(t("plans-extra-unlocks", lang, modes=modes))
    if plan.free_operations:
        parts.append(t("plans-extra-free", lang, free=free_ops(plan.free_operations, lang)))
    if plan.trial_days:
        days = t("plans-days", lang, count=plan.trial_days)
        parts.append(t("plans-extra-trial", lang, days=days))
    return "".join(parts)


def _life(plan: PlanInfo, lang: str) -> str:
    if plan.expires_days is None:
        return t("plans-forever", lang)
    return t("plans-life-days", lang, days=t("plans-days", lang, count=plan.expires_days))


def plan_line(plan: PlanInfo, lang: str) -> str:
    """One plan of the catalogue, one line: its price and what it gives."""
    args = {
        "name": plan.name(lang),
        "price": format_rub(plan.price),
        "ops": ops(plan.units, lang),
        "extras": _extras(plan, lang),
    }
    if plan.kind == PlanKind.SUBSCRIPTION:
        return t("plans-line-subscription", lang, per=per(plan.period, lang), **args)
    return t("plans-line-package", lang, life=_life(plan, lang), **args)


def plan_card(plan: PlanInfo, lang: str) -> str:
    args = {
        "name": plan.name(lang),
        "price": format_rub(plan.price),
        "ops": ops(plan.units, lang),
        "extras": _extras(plan, lang),
    }
    if plan.kind == PlanKind.SUBSCRIPTION:
        return t("plans-card-subscription", lang, per=per(plan.period, lang), **args)
    return t("plans-card-package", lang, life=_life(plan, lang), **args)


def units_note(
    settings: Settings,
    lang: str,
    modes: Collection[str] | None = None,
    set_units: Mapping[str, int] | None = None,
) -> str | None:
    """ "🎨 Создать — по 2 операции; остальные — по 1", when some paid type (of ``modes``,
    the ones offered) costs other than one operation (the model catalogue's units, or
    OPERATION_UNITS: ``set_units`` are the catalogue's); None when every paid type costs
    one."""
    by_units: dict[int, list[str]] = defaultdict(list)
    for kind in operation_types():
        if modes is not None and kind.value not in modes:
            continue
        units = units_of(kind, settings, (set_units or {}).get(kind.value))
        if units not in (0, 1):
            by_units[units].append(mode_name(kind.value, lang))
    if not by_units:
        return None
    lines = "; ".join(
        t("plans-units-note-line", lang, modes=", ".join(modes), ops=ops(units, lang))
        for units, modes in sorted(by_units.items())
    )
    return t("plans-units-note", lang, lines=lines)


# -- what the user holds --------------------------------------------------------------------


def renews(sub: Holding) -> bool:
    """Whether the quota starts again at the period's end: not when auto-renewal is off or
    the plan it would renew into is no longer sold (then the subscription just ends)."""
    target = sub.next_plan or sub.plan
    return sub.auto_renew and not target.archived and not target.is_default


def subscription_lines(sub: Holding, lang: str) -> list[str]:
    date = date_text(sub.ends_at, lang) if sub.ends_at is not None else "—"
    quota = "plans-quota" if renews(sub) else "plans-quota-ends"
    lines = [
        t(
            "plans-title-paid",
            lang,
            name=sub.plan.name(lang),
            price=format_rub(sub.price),
            per=per(sub.period, lang),
        ),
        t(quota, lang, left=sub.units_left, total=sub.units_per_period, date=date),
    ]
    if sub.trial:
        price = sub.plan.price
        lines.append(
            t("plans-trial", lang, date=date, price=format_rub(price), per=per(sub.period, lang))
        )
    if sub.next_plan is not None and sub.auto_renew:
        nxt = sub.next_plan
        lines.append(
            t(
                "plans-next",
                lang,
                date=date,
                name=nxt.name(lang),
                price=format_rub(nxt.price),
                per=per(nxt.period, lang),
            )
        )
    elif not sub.auto_renew:
        lines.append(t("plans-renews-off", lang, date=date))
    elif sub.plan.archived:
        lines.append(t("plans-renews-archived", lang, date=date))
    elif not sub.trial:
        lines.append(t("plans-renews", lang, date=date, price=format_rub(sub.plan.price)))
    return lines


def package_line(pack: Holding, lang: str) -> str:
    return t(
        "plans-package",
        lang,
        name=pack.plan.name(lang),
        left=ops(pack.units_left, lang),
        until=until(pack.ends_at, lang),
    )


def per_operation_line(held: Wallet, settings: Settings, lang: str) -> str:
    price = discounted(settings.price_kopecks, held.discount_percent)
    if held.discount_percent:
        return t(
            "plans-pay-per-op-discount",
            lang,
            price=format_rub(price),
            percent=held.discount_percent,
        )
    return t("plans-pay-per-op", lang, price=format_rub(price))


def wallet_lines(held: Wallet, settings: Settings, lang: str) -> list[str]:
    """The top of /plans: the plan, its quota, the packages, free operations, the balance."""
    if held.subscription is not None:
        lines = subscription_lines(held.subscription, lang)
    else:
        name = held.default_plan.name(lang) if held.default_plan is not None else "—"
        lines = [t("plans-title", lang, name=name)]
    lines += [package_line(p, lang) for p in held.packages]
    lines.append(t("plans-free-left", lang, left=held.free_left))
    lines.append(t("plans-balance", lang, balance=format_rub(held.balance)))
    lines.append(per_operation_line(held, settings, lang))
    return lines


def balance_lines(held: Wallet, lang: str) -> list[str]:
    """The lines /balance adds under the rubles and free operations: quota and packages."""
    lines = []
    sub = held.subscription
    if sub is not None:
        lines.append(
            t(
                "plans-balance-quota" if renews(sub) else "plans-balance-quota-ends",
                lang,
                name=sub.plan.name(lang),
                left=sub.units_left,
                total=sub.units_per_period,
                date=date_text(sub.ends_at, lang) if sub.ends_at else "—",
            )
        )
    for pack in held.packages:
        lines.append(
            t(
                "plans-balance-package",
                lang,
                name=pack.plan.name(lang),
                left=ops(pack.units_left, lang),
                until=until(pack.ends_at, lang),
            )
        )
    return lines


# -- a charge in words ------------------------------------------------------------------------


def quote_text(quote: Quote, lang: str) -> str:
    """ "Спишется 2 операции из подписки, останется 18" / "Спишется 20 ₽, останется 80 ₽"."""
    if quote.source is Funding.FREE:
        return t("plans-quote-free", lang, left=quote.left)
    if quote.source is Funding.SUBSCRIPTION:
        return t("plans-quote-subscription", lang, ops=ops(quote.takes, lang), left=quote.left)
    if quote.source is Funding.PACKAGE:
        name = quote.holding_plan.name(lang) if quote.holding_plan else "—"
        return t(
            "plans-quote-package", lang, ops=ops(quote.takes, lang), left=quote.left, name=name
        )
    if quote.source is Funding.BALANCE:
        key = "plans-quote-balance-discount" if quote.discount_percent else "plans-quote-balance"
        return t(
            key,
            lang,
            price=format_rub(quote.takes),
            left=format_rub(quote.left),
            percent=quote.discount_percent,
        )
    raise ValueError(f"no words for a quote from {quote.source!r}")


def confirm_text(quote: Quote, lang: str) -> str:
    return t(
        "plans-confirm", lang, mode=mode_name(quote.op_type, lang), quote=quote_text(quote, lang)
    )


def locked_text(op_type: str, unlocking: list[PlanInfo], lang: str) -> str:
    mode = mode_name(op_type, lang)
    if not unlocking:
        return t("plans-locked-nowhere", lang, mode=mode)
    names = ", ".join(f"«{p.name(lang)}»" if lang != "en" else p.name(lang) for p in unlocking)
    return t("plans-locked", lang, mode=mode, plans=names)


def offer_text(free_left: int, lang: str) -> str:
    return t("plans-offer", lang, free_left=max(0, free_left))


# -- the history ----------------------------------------------------------------------------


def _signed(value: int) -> str:
    return "+" if value > 0 else "−"


def _change(item: HistoryItem, lang: str) -> str:
    """What an entry moved, in words: "−199 ₽, +30 операций", "+2 бесплатные операции"."""
    parts = []
    if item.amount:
        parts.append(
            t(
                "plans-h-money",
                lang,
                sign=_signed(item.amount),
                amount=format_rub(abs(item.amount)),
            )
        )
    if item.units_delta:
        parts.append(
            t(
                "plans-h-units",
                lang,
                sign=_signed(item.units_delta),
                ops=ops(abs(item.units_delta), lang),
            )
        )
    if item.free_delta:
        parts.append(
            t(
                "plans-h-free",
                lang,
                sign=_signed(item.free_delta),
                free=free_ops(abs(item.free_delta), lang),
            )
        )
    return ", ".join(parts)


def history_line(item: HistoryItem, lang: str) -> str:
    return t(
        "plans-history-line",
        lang,
        date=datetime_text(item.created_at, lang),
        what=history_what(item, lang),
    )


def history_what(item: HistoryItem, lang: str) -> str:
    kind = item.kind
    mode = mode_name(item.op_type, lang)
    plan = item.plan.name(lang) if item.plan is not None else "—"
    amount = format_rub(abs(item.amount))
    if kind == LedgerKind.SIGNUP:
        return t("plans-h-signup", lang, free=free_ops(item.free_delta, lang))
    if kind == LedgerKind.TOPUP:
        return t("plans-h-topup", lang, amount=amount)
    if kind == LedgerKind.PAYMENT_REFUND:
        return t("plans-h-payment-refund", lang, amount=amount)
    if kind == LedgerKind.CHARGE:
        if item.free_delta:
            return t("plans-h-charge-free", lang, mode=mode)
        if item.units_delta:
            key = (
                "plans-h-charge-package"
                if item.funding == Funding.PACKAGE
                else "plans-h-charge-subscription"
            )
            return t(key, lang, mode=mode, ops=ops(abs(item.units_delta), lang), plan=plan)
        return t("plans-h-charge-balance", lang, mode=mode, amount=amount)
    if kind == LedgerKind.REFUND:
        if item.free_delta:
            return t("plans-h-refund-free", lang, mode=mode)
        if item.units_delta:
            return t(
                "plans-h-refund-units", lang, mode=mode, ops=ops(item.units_delta, lang), plan=plan
            )
        if item.amount:
            return t("plans-h-refund-balance", lang, mode=mode, amount=amount)
        if item.funding == Funding.PACKAGE:
            return t("plans-h-refund-plan-ended", lang, mode=mode, plan=plan)
        return t("plans-h-refund-period-over", lang, mode=mode)
    change = _change(item, lang)
    if kind == LedgerKind.ADJUSTMENT:
        return t("plans-h-adjustment", lang, change=change)
    if kind == LedgerKind.PLAN_PURCHASE:
        trial = item.amount == 0 and item.plan is not None and item.plan.trial_days > 0
        if trial:
            return t(
                "plans-h-purchase-trial", lang, plan=plan, change=": " + change if change else ""
            )
        return t("plans-h-purchase", lang, plan=plan, change=change or "0")
    if kind == LedgerKind.RENEWAL:
        return t("plans-h-renewal", lang, plan=plan, change=change or "0")
    if kind == LedgerKind.PLAN_END:
        why = t(f"plans-h-end-{(item.end_reason or 'expired').replace('_', '-')}", lang)
        gone = (
            ", " + t("plans-h-units-gone", lang, ops=ops(-item.units_delta, lang))
            if item.units_delta < 0
            else ""
        )
        return t("plans-h-end", lang, plan=plan, why=why, change=gone)
    if kind == LedgerKind.FREE_RENEWAL:
        return t("plans-h-free-renewal", lang, change=change)
    return t("plans-h-other", lang, change=change)


# -- the operations (the Mini App) ----------------------------------------------------------

_REASON_CODE = re.compile(r"[a-z_]+")


def operation_cost_text(op: OperationItem, lang: str) -> str:
    """What an operation took, from its source: "20 ₽", "1 бесплатная операция", "2 операции
    из подписки", "бесплатно"."""
    if op.funding == Funding.BALANCE:
        return t("miniapp-op-cost-balance", lang, amount=format_rub(op.price))
    if op.funding == Funding.FREE:
        return t("miniapp-op-cost-free", lang, free=free_ops(1, lang))
    if op.funding in (Funding.SUBSCRIPTION, Funding.PACKAGE):
        return t(f"miniapp-op-cost-{op.funding}", lang, ops=ops(op.units, lang))
    return t("miniapp-op-cost-none", lang)


def failure_text(error: str | None, lang: str) -> str:
    """Why an operation failed, in the words of the worker's message: the stored error
    starts with the failure's reason code ("timeout: …"); one with no text of its own (the
    bot's "enqueue failed: …") reads as the general reason."""
    code = (error or "").partition(":")[0].strip()
    if _REASON_CODE.fullmatch(code):
        try:
            return t(f"worker-reason-{code.replace('_', '-')}", lang, which="other", limit_mb="20")
        except MissingText:
            pass
    return t("app-op-reason-other", lang)
