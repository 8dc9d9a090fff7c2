"""/stats on screen (texts/locales/<lang>/stats.ftl): the operator's figures of
:func:`billing.stats.collect` as one HTML message, its tables in monospace blocks.

Money is shown in rubles with kopecks, grouped by plain spaces (in a monospace block a
narrow space may be narrower than a digit and break the columns).
"""

from __future__ import annotations

import html
from datetime import date, timedelta
from fractions import Fraction

from billing.prices import format_rub_kopecks
from billing.stats import Stats, table
from texts.i18n import t
from texts.wallet_texts import datetime_text

SPANS = ("today", "week", "month")
MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def rub(kopecks: int) -> str:
    return format_rub_kopecks(kopecks, group=" ")


def percent(rate: Fraction | None) -> str:
    """A rate as whole percent, rounded half up; "—" when there is nothing to divide."""
    return "—" if rate is None else f"{int(rate * 100 + Fraction(1, 2))}%"


def age(value: timedelta | None, lang: str) -> str:
    """ "2 дн 4 ч", "3 ч 5 мин", "7 мин"; "—" for none."""
    if value is None:
        return "—"
    minutes = int(value.total_seconds()) // 60
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return t("admin-stats-age-days", lang, days=str(days), hours=str(hours))
    if hours:
        return t("admin-stats-age-hours", lang, hours=str(hours), minutes=str(minutes))
    return t("admin-stats-age-minutes", lang, minutes=str(minutes))


def method_name(method: str, lang: str) -> str:
    return t(f"admin-stats-method-{method}", lang)


def day_text(day: date, lang: str) -> str:
    return t(
        "admin-stats-date",
        lang,
        day=f"{day.day:02d}",
        month=f"{day.month:02d}",
        month_name=MONTHS_EN[day.month - 1],
    )


def _pre(lines: list[str]) -> str:
    return "\n".join(html.escape(line) for line in lines)


def revenue_table(stats: Stats, lang: str) -> list[str]:
    """Net revenue per way of payment and in all for today, 7 and 30 days; then what was
    credited and what was refunded of the total."""
    col = ("admin-stats-col-today", "admin-stats-col-week", "admin-stats-col-month")
    rows = [[t("admin-stats-col-method", lang), *(t(key, lang) for key in col)]]
    for method in stats.revenue:
        rows.append(
            [method_name(method.method, lang), *(rub(getattr(method, s).net) for s in SPANS)]
        )
    totals = [stats.revenue_total(s) for s in SPANS]
    rows.append([t("admin-stats-row-total", lang), *(rub(m.net) for m in totals)])
    rows.append([t("admin-stats-row-credited", lang), *(rub(m.credited) for m in totals)])
    rows.append([t("admin-stats-row-refunded", lang), *(rub(-m.refunded) for m in totals)])
    return table(rows)


def days_table(stats: Stats, lang: str) -> list[str]:
    methods = [r.method for r in stats.revenue]
    rows = [
        [
            t("admin-stats-col-day", lang),
            *(method_name(m, lang) for m in methods),
            t("admin-stats-row-total", lang),
        ]
    ]
    for day in stats.days:
        rows.append(
            [
                day_text(day.day, lang),
                *(rub(day.by_method[m].net) for m in methods),
                rub(day.total.net),
            ]
        )
    return table(rows)


def operations_table(stats: Stats, lang: str) -> list[str]:
    cols = ("type", "count", "ok", "failed", "refunded", "failure-rate", "refund-rate")
    rows = [[t(f"admin-stats-col-{c}", lang) for c in cols]]
    for op in stats.operations:
        rows.append(
            [
                op.type,
                str(op.count),
                str(op.succeeded),
                str(op.failed),
                str(op.refunded),
                percent(op.failure_rate),
                percent(op.refund_rate),
            ]
        )
    return table(rows, gap=1)


def pending_table(stats: Stats, lang: str) -> list[str]:
    cols = ("method", "payments", "sum", "oldest")
    rows = [[t(f"admin-stats-col-{c}", lang) for c in cols]]
    for open_ in stats.pending:
        rows.append(
            [
                method_name(open_.method, lang),
                str(open_.count),
                rub(open_.amount),
                age(open_.oldest_age(stats.now), lang),
            ]
        )
    return table(rows)


def stats_text(stats: Stats, lang: str) -> str:
    """The /stats message (HTML)."""
    if stats.operations:
        running = sum(op.running for op in stats.operations)
        operations = t(
            "admin-stats-operations",
            lang,
            table=_pre(operations_table(stats, lang)),
            running=running,
        )
    else:
        operations = t("admin-stats-no-operations", lang)
    return t(
        "admin-stats",
        lang,
        now=datetime_text(stats.now, lang, stats.zone),
        zone=html.escape(str(stats.zone)),
        users_total=stats.users_total,
        users_today=stats.users_today,
        users_week=stats.users_week,
        revenue=_pre(revenue_table(stats, lang)),
        days=_pre(days_table(stats, lang)),
        operations=operations,
        pending=_pre(pending_table(stats, lang)),
        debtors=stats.debtors,
        debt=rub(stats.debt),
    )
