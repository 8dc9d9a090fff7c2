"""The operator's figures (billing.stats) on PostgreSQL and SQLite: a seeded story with
users of different days, payments through YooKassa and in Stars, a refund that leaves a
debt, operations of every outcome and open payments gives exactly the figures worked out by
hand; the days are the operator's (BOT_TIMEZONE), not UTC's."""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest

from billing import stats
from billing.stats import Money
from tests.billing.stats_story import NOW, STORY_SETTINGS, seed, utc
from tests.conftest import make_settings

MOSCOW = ZoneInfo("Europe/Moscow")


@pytest.fixture
def settings(any_db_url: str):  # type: ignore[no-untyped-def]
    return make_settings(any_db_url, **STORY_SETTINGS)


async def _collect(sessionmaker, zone=MOSCOW, now=NOW) -> stats.Stats:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        return await stats.collect(session, zone=zone, now=now)


async def test_the_story_gives_the_figures_worked_out_by_hand(sessionmaker, settings) -> None:
    await seed(sessionmaker, settings)
    figures = await _collect(sessionmaker)

    assert figures.today == date(2026, 3, 10)
    # 1003 came at 01:00 Moscow today, 1004 this morning, 1002 on 5 March, 1001 in January.
    assert (figures.users_total, figures.users_today, figures.users_week) == (4, 2, 3)

    yookassa, in_stars = figures.revenue
    assert yookassa.method == "yookassa" and in_stars.method == "stars"
    # Today 150,50 ₽; 7 days: + 100 ₽ of 5 March, − its refund of 7 March; 30 days: + 300 ₽
    # of 20 February.
    assert yookassa.today == Money(credited=15_050, payments=1)
    assert yookassa.week == Money(credited=25_050, refunded=10_000, payments=2, refunds=1)
    assert yookassa.month == Money(credited=55_050, refunded=10_000, payments=3, refunds=1)
    assert (yookassa.today.net, yookassa.week.net, yookassa.month.net) == (15_050, 15_050, 45_050)
    # 50 ⭐ at 100 kopecks each, paid at 00:30 Moscow today.
    assert in_stars.today == in_stars.week == in_stars.month == Money(credited=5_000, payments=1)
    assert figures.revenue_total("month") == Money(
        credited=60_050, refunded=10_000, payments=4, refunds=1
    )

    assert [d.day for d in figures.days] == [date(2026, 3, n) for n in range(4, 11)]
    net = {
        d.day.day: (d.by_method["yookassa"].net, d.by_method["stars"].net) for d in figures.days
    }
    assert net == {
        4: (0, 0),
        5: (10_000, 0),
        6: (0, 0),
        7: (-10_000, 0),
        8: (0, 0),
        9: (0, 0),
        10: (15_050, 5_000),
    }
    assert sum((d.total for d in figures.days), Money()) == figures.revenue_total("week")

    by_type = {op.type: op for op in figures.operations}
    assert [op.type for op in figures.operations] == ["upscale", "add_text", "edit"]
    upscale, add_text, edit = by_type["upscale"], by_type["add_text"], by_type["edit"]
    assert (upscale.count, upscale.succeeded, upscale.failed, upscale.refunded) == (4, 2, 0, 1)
    assert upscale.running == 1  # this morning's, still queued: no outcome, no rate
    assert upscale.failure_rate == upscale.refund_rate == Fraction(1, 3)
    assert (add_text.count, add_text.succeeded, add_text.failed, add_text.refunded) == (2, 1, 1, 0)
    assert (add_text.failure_rate, add_text.refund_rate) == (Fraction(1, 2), 0)
    # The edit of 25 February is older than 7 days.
    assert (edit.count, edit.refunded, edit.failure_rate, edit.refund_rate) == (1, 1, 1, 1)

    open_yookassa, open_stars = figures.pending
    assert (open_yookassa.method, open_yookassa.count, open_yookassa.amount) == (
        "yookassa",
        1,
        50_000,
    )
    assert open_yookassa.oldest_age(figures.now) == timedelta(hours=3)
    assert (open_stars.method, open_stars.count, open_stars.amount) == ("stars", 1, 10_000)
    assert open_stars.oldest_age(figures.now) == timedelta(days=2)
    assert (figures.pending_count, figures.pending_amount) == (2, 60_000)

    # 1002 spent 20 ₽ of the 100 ₽ that went back to the card.
    assert (figures.debtors, figures.debt) == (1, 2_000)


async def test_days_are_counted_on_the_operators_clock(sessionmaker, settings) -> None:
    """In UTC, 1003's signup and Stars payment (21:30-22:00 UTC on 9 March, after midnight
    in Moscow) belong to yesterday."""
    await seed(sessionmaker, settings)
    figures = await _collect(sessionmaker, zone=ZoneInfo("UTC"))

    assert figures.today == date(2026, 3, 10)
    assert (figures.users_total, figures.users_today, figures.users_week) == (4, 1, 3)
    yookassa, in_stars = figures.revenue
    assert yookassa.today == Money(credited=15_050, payments=1)
    assert in_stars.today == Money() and in_stars.week == Money(credited=5_000, payments=1)
    stars_by_day = {d.day.day: d.by_method["stars"].net for d in figures.days}
    assert stars_by_day[9] == 5_000 and stars_by_day[10] == 0


async def test_a_day_later_today_is_empty_and_the_oldest_days_leave_the_week(
    sessionmaker, settings
) -> None:
    await seed(sessionmaker, settings)
    figures = await _collect(sessionmaker, now=utc(15, 9))  # 15 March, 12:00 Moscow

    assert (figures.users_today, figures.users_week) == (0, 2)  # 1003 and 1004, on 10 March
    yookassa, in_stars = figures.revenue
    assert yookassa.today == Money()
    # The 7 days are 9-15 March: 5 March's payment and its refund of 7 March left them.
    assert yookassa.week == Money(credited=15_050, payments=1)
    assert yookassa.month == Money(credited=55_050, refunded=10_000, payments=3, refunds=1)
    assert [d.day for d in figures.days][0] == date(2026, 3, 9)
    # From 9 March 00:00 Moscow (8 March 21:00 UTC): not the upscales of 6 and 8 March.
    assert {op.type: op.count for op in figures.operations} == {
        "upscale": 1,
        "add_text": 2,
        "edit": 1,
    }


async def test_an_empty_database_gives_zeros(sessionmaker) -> None:
    figures = await _collect(sessionmaker)
    assert (figures.users_total, figures.users_today, figures.debtors, figures.debt) == (0,) * 4
    assert [r.method for r in figures.revenue] == ["yookassa", "stars"]
    assert all(r.month == Money() for r in figures.revenue)
    assert len(figures.days) == 7 and all(d.total == Money() for d in figures.days)
    assert figures.operations == []
    assert [(p.count, p.oldest_at) for p in figures.pending] == [(0, None), (0, None)]


def test_day_bounds_are_local_midnights_in_utc() -> None:
    bounds = stats.day_bounds(NOW, MOSCOW, 2)
    assert bounds == [utc(8, 21), utc(9, 21), utc(10, 21)]
    # A zone with daylight saving: the day of the change is 23 hours long.
    berlin = stats.day_bounds(utc(29, 12), ZoneInfo("Europe/Berlin"), 2)
    assert [b - a for a, b in zip(berlin, berlin[1:], strict=False)] == [
        timedelta(hours=24),
        timedelta(hours=23),
    ]
