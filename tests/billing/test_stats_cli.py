"""`python -m billing stats` as an operator runs it (PostgreSQL and SQLite): the figures of
the seeded story (tests/billing/stats_story.py), the same as the bot's /stats, in plain
columns; days on BOT_TIMEZONE. The clock is pinned at the story's NOW."""

from __future__ import annotations

import functools

import pytest

from billing import stats
from tests.billing.stats_story import NOW, STORY_SETTINGS, seed
from tests.conftest import make_settings

STORY_OUTPUT = """\
Media Lab statistics, 2026-03-10 12:00 Europe/Moscow
(days start at local midnight; 7 and 30 days include today)

users: 4 in all, 2 new today, 3 new in 7 days

revenue, RUB (net: credited minus refunded)
method       today   7 days  30 days
yookassa    150,50   150,50   450,50
stars        50,00    50,00    50,00
total       200,50   200,50   500,50
  credited  200,50   300,50   600,50
  refunded    0,00  −100,00  −100,00

revenue by day, RUB (net)
day             yookassa  stars    total
2026-03-04 Wed      0,00   0,00     0,00
2026-03-05 Thu    100,00   0,00   100,00
2026-03-06 Fri      0,00   0,00     0,00
2026-03-07 Sat   −100,00   0,00  −100,00
2026-03-08 Sun      0,00   0,00     0,00
2026-03-09 Mon      0,00   0,00     0,00
2026-03-10 Tue    150,50  50,00   200,50

operations of the last 7 days (rates: of those finished)
type      all  ok  failed  refunded  running  fail %  refund %
upscale     4   2       0         1        1   33.3%     33.3%
add_text    2   1       1         0        0   50.0%      0.0%
edit        1   0       0         1        0  100.0%    100.0%

payments not paid yet
method    count     RUB  oldest
yookassa      1  500,00   3h 0m
stars         1  100,00   2d 0h

money owed (balances below zero after a refund): 1 user(s), 20,00 RUB
"""


@pytest.fixture
def cli(any_engine, any_db_url, monkeypatch, billing_cli):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", any_db_url)
    monkeypatch.delenv("BOT_TIMEZONE", raising=False)
    monkeypatch.setattr(stats, "utcnow", lambda: NOW)
    return functools.partial(billing_cli, "stats")


async def test_stats_prints_the_figures_of_the_story(cli, sessionmaker, any_db_url) -> None:  # type: ignore[no-untyped-def]
    await seed(sessionmaker, make_settings(any_db_url, **STORY_SETTINGS))
    code, out, err = await cli()
    assert (code, err) == (0, "")
    assert out == STORY_OUTPUT


async def test_stats_counts_days_in_bot_timezone(  # type: ignore[no-untyped-def]
    cli, sessionmaker, any_db_url, monkeypatch
) -> None:
    await seed(sessionmaker, make_settings(any_db_url, **STORY_SETTINGS))
    monkeypatch.setenv("BOT_TIMEZONE", "UTC")
    code, out, _ = await cli()
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("Media Lab statistics, 2026-03-10 09:00 UTC")
    assert lines[3] == "users: 4 in all, 1 new today, 3 new in 7 days"
    assert lines[20:22] == [
        "2026-03-09 Mon      0,00  50,00    50,00",
        "2026-03-10 Tue    150,50   0,00   150,50",
    ]
