"""/stats over the Telegram emulator with the real dispatcher and PostgreSQL: an admin gets
the figures of the seeded story (tests/billing/stats_story.py) as one message with its
tables in monospace blocks, in the admin's language; anyone else gets the ordinary answer
and nothing of the figures. The day is pinned through the dispatcher's "clock"."""

from __future__ import annotations

from billing.stats import collect
from tests.billing.stats_story import NOW, STORY_SETTINGS, seed
from tests.bot.conftest import StartBot

ADMIN = 5001
EN_ADMIN = 5005
STRANGER = 5004

REVENUE_RU = """способ      сегодня   7 дней  30 дней
ЮKassa       150,50   150,50   450,50
Stars         50,00    50,00    50,00
итого        200,50   200,50   500,50
зачислено    200,50   300,50   600,50
возвращено     0,00  −100,00  −100,00"""

DAYS_RU = """день    ЮKassa  Stars    итого
04.03     0,00   0,00     0,00
05.03   100,00   0,00   100,00
06.03     0,00   0,00     0,00
07.03  −100,00   0,00  −100,00
08.03     0,00   0,00     0,00
09.03     0,00   0,00     0,00
10.03   150,50  50,00   200,50"""

OPERATIONS_RU = """тип      всего ок сбой возвр %сбоев %возвр
upscale      4  2    0     1    33%    33%
add_text     2  1    1     0    50%     0%
edit         1  0    0     1   100%   100%"""

PENDING_RU = """способ  платежей  сумма, ₽  самый давний
ЮKassa         1    500,00     3 ч 0 мин
Stars          1    100,00      2 дн 0 ч"""


def _blocks(message) -> list[str]:  # type: ignore[no-untyped-def]
    """The text of each monospace block of a message, as Telegram shows it."""
    text16 = message.text.encode("utf-16-le")
    return [
        text16[2 * e["offset"] : 2 * (e["offset"] + e["length"])].decode("utf-16-le")
        for e in message.entities
        if e["type"] == "pre"
    ]


async def test_an_admin_gets_the_figures_of_the_story(start_bot: StartBot, tg) -> None:
    app = await start_bot(ADMIN_IDS=[ADMIN, EN_ADMIN], **STORY_SETTINGS)
    app.dispatcher["clock"] = lambda: NOW
    await seed(app.sessionmaker, app.settings)

    admin = tg.user(ADMIN)
    await admin.send_text("/stats")
    answer = await admin.wait_for_text("Статистика")
    assert answer.text.startswith("📊 Статистика на 10.03.2026 12:00 (Europe/Moscow)")
    assert "Пользователи: всего 4, новых сегодня 2, за 7 дней 3." in answer.text
    assert _blocks(answer) == [REVENUE_RU, DAYS_RU, OPERATIONS_RU, PENDING_RU]
    assert "ещё в работе: 1." in answer.text
    assert answer.text.endswith(
        "Долги (баланс ниже нуля после возврата платежа): 1 пользователь, 20,00 ₽."
    )

    en_admin = tg.user(EN_ADMIN, language="en")
    await en_admin.send_text("/stats")
    answer = await en_admin.wait_for_text("Statistics")
    assert "Users: 4 in all, 2 new today, 3 in 7 days." in answer.text
    revenue, days, operations, pending = _blocks(answer)
    assert revenue.splitlines()[1] == "YooKassa  150,50   150,50   450,50"
    assert days.splitlines()[-1] == "Mar 10    150,50  50,00   200,50"
    assert operations.splitlines()[0] == "type     all ok fail refd fail% refd%"
    assert pending.splitlines()[2] == "Stars            1  100,00    2 d 0 h"
    assert answer.text.endswith("1 user, 20,00 ₽.")


async def test_the_days_follow_bot_timezone(start_bot: StartBot, tg) -> None:
    """In UTC, 1003's signup and Stars payment (after midnight in Moscow) are yesterday's."""
    app = await start_bot(ADMIN_IDS=[ADMIN], BOT_TIMEZONE="UTC", **STORY_SETTINGS)
    app.dispatcher["clock"] = lambda: NOW
    await seed(app.sessionmaker, app.settings)

    admin = tg.user(ADMIN)
    await admin.send_text("/stats")
    answer = await admin.wait_for_text("Статистика")
    assert answer.text.startswith("📊 Статистика на 10.03.2026 09:00 (UTC)")
    assert "новых сегодня 1, за 7 дней 3." in answer.text
    days = _blocks(answer)[1].splitlines()
    assert days[-2:] == ["09.03     0,00  50,00    50,00", "10.03   150,50   0,00   150,50"]


async def test_a_new_bot_answers_with_zeros_and_no_operations(start_bot: StartBot, tg) -> None:
    await start_bot(ADMIN_IDS=[ADMIN])
    admin = tg.user(ADMIN)
    await admin.send_text("/stats")
    answer = await admin.wait_for_text("Статистика")
    assert "Пользователи: всего 0, новых сегодня 0, за 7 дней 0." in answer.text
    assert "За 7 дней операций не было." in answer.text
    assert answer.text.endswith("0 пользователей, 0,00 ₽.")


async def test_a_non_admin_gets_the_ordinary_answer_and_no_figures(
    start_bot: StartBot, tg
) -> None:
    app = await start_bot(ADMIN_IDS=[ADMIN], **STORY_SETTINGS)
    app.dispatcher["clock"] = lambda: NOW
    await seed(app.sessionmaker, app.settings)
    admin = tg.user(ADMIN)
    await admin.send_text("/stats")
    await admin.wait_for_text("Выручка")  # the command is there, for the admin
    async with app.sessionmaker() as session:
        before = await collect(session, zone=app.settings.zone, now=NOW)

    stranger = tg.user(STRANGER)
    await stranger.send_text("/start")
    await stranger.wait_for_text("Привет")
    await stranger.send_text("/stats")
    await stranger.wait_for_text("сначала выберите режим")
    for message in await stranger.bot_messages():
        assert not any(w in message.text for w in ("Статистика", "Выручка", "Долги"))
    async with app.sessionmaker() as session:
        after = await collect(session, zone=app.settings.zone, now=NOW)
    assert (after.users_total, after.revenue, after.debt) == (
        before.users_total + 1,  # the stranger's /start, nothing else
        before.revenue,
        before.debt,
    )
