"""The plans catalogue from the bot (/plans_admin, /plan_edit, /plan_archive) over the
Telegram emulator with the real dispatcher and PostgreSQL: ADMIN_IDS only, every bad input
answered in plain words with nothing changed, the texts in both languages."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from billing.models import Plan
from billing.plans import PlanInvalid
from tests.bot.conftest import RunningBot, StartBot
from texts.i18n import keys

ADMIN = 5101
STRANGER = 5102


async def _plan(app: RunningBot, code: str) -> Plan:
    async with app.sessionmaker() as session:
        plan = await session.scalar(select(Plan).where(Plan.code == code))
        assert plan is not None
        return plan


async def _codes(app: RunningBot) -> list[str]:
    async with app.sessionmaker() as session:
        return list(await session.scalars(select(Plan.code).order_by(Plan.code)))


async def test_the_admin_lists_edits_and_archives_plans(start_bot: StartBot, tg) -> None:
    app = await start_bot(ADMIN_IDS=[ADMIN])
    admin = tg.user(ADMIN)
    await admin.send_text("/plans_admin")
    listing = await admin.wait_for_text("Тарифы")
    text = listing.text
    assert text.index("free") < text.index("pro") < text.index("pack10")
    assert "[по умолчанию]" in text
    assert "199 ₽ · подписка, 30 ед. за месяц" in text
    assert "80 ₽ · пакет, 10 ед. на 90 дн." in text

    await admin.send_text('/plan_edit pro price=249,50 units=40 name_ru="Про плюс"')
    saved = await admin.wait_for_text("Сохранено")
    assert "«Про плюс»" in saved.text and "249,50 ₽" in saved.text
    plan = await _plan(app, "pro")
    assert (plan.price, plan.units, plan.name_ru) == (24_950, 40, "Про плюс")

    await admin.send_text("/plan_archive pack10")
    await admin.wait_for_text("Снят с продажи")
    assert (await _plan(app, "pack10")).archived_at is not None
    await admin.send_text("/plan_archive pack10")
    await admin.wait_for_text("уже в архиве")
    await admin.send_text("/plans_admin")
    again = await admin.wait_for(lambda m: "Тарифы" in m.text and "pack10" in m.text)
    assert "[в архиве]" in again.text


async def test_the_admin_adds_a_plan_that_is_then_on_sale(start_bot: StartBot, tg) -> None:
    app = await start_bot(ADMIN_IDS=[ADMIN])
    admin = tg.user(ADMIN)
    await admin.send_text(
        '/plan_add pro_year kind=subscription name_ru="Про на год" name_en="Pro yearly" '
        "price=1990 period=year units=400 discount=15"
    )
    added = await admin.wait_for_text("Тариф заведён")
    assert "«Про на год»" in added.text and "1\u202f990 ₽ · подписка, 400 ед. за год" in added.text
    plan = await _plan(app, "pro_year")
    assert (plan.kind, plan.price, plan.period, plan.units, plan.discount_percent) == (
        "subscription",
        199_000,
        "year",
        400,
        15,
    )
    assert plan.archived_at is None
    # On sale: a user sees it in /plans.
    user = tg.user(STRANGER)
    await user.send_text("/plans")
    assert "Про на год" in (await user.wait_for_text("Про на год")).text


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("/plan_edit", "Формат: /plan_edit КОД"),
        ("/plan_edit pro", "Формат: /plan_edit КОД"),
        ("/plan_edit nope price=1", "Тарифа с кодом «nope» нет"),
        ("/plan_edit pro price=abc", "Цена «abc» — не сумма в рублях"),
        ("/plan_edit pro discount=150", "discount_percent должно быть от 0 до 100, а не 150"),
        ("/plan_edit pro kind=package", "Поле kind менять нельзя"),
        ("/plan_edit pro colour=<b>red</b>", "Нет поля «colour»"),
        ("/plan_edit pro unlocks=teleport", "неизвестная операция «teleport»"),
        ("/plan_edit free price=10", "Тариф по умолчанию — бесплатная подписка"),
        ("/plan_edit pro default=no", None),  # pro is not the default: a no-op edit is fine
        ("/plan_add", "Формат: /plan_add КОД kind="),
        ("/plan_add pro_year", "Формат: /plan_add КОД kind="),
        ("/plan_add pro kind=package name_ru=A name_en=B price=5", "Тариф с кодом «pro» уже есть"),
        ("/plan_add 9x kind=package name_ru=A name_en=B price=5", "«9x» — не код тарифа"),
        ("/plan_add pk kind=package name_ru=A price=5", "Нужно указать name_en"),
        ("/plan_add pk kind=subscription name_ru=A name_en=B price=5", "должен быть период"),
        ("/plan_archive", "Формат: /plan_archive КОД"),
        ("/plan_archive free", "Тариф по умолчанию нельзя снять с продажи"),
        ("/plan_archive nope", "Тарифа с кодом «nope» нет"),
    ],
)
async def test_every_bad_plan_command_is_answered_and_changes_nothing(
    start_bot: StartBot, tg, command: str, words: str | None
) -> None:
    app = await start_bot(ADMIN_IDS=[ADMIN])
    before = await _plan(app, "pro")
    codes = await _codes(app)
    admin = tg.user(ADMIN)
    await admin.send_text(command)
    answer = await admin.wait_for_message()
    if words is None:
        assert "Сохранено" in answer.text
        return
    assert words in answer.text, answer.text
    assert "Сохранено" not in answer.text
    after = await _plan(app, "pro")
    assert (after.price, after.units, after.discount_percent, after.archived_at) == (
        before.price,
        before.units,
        before.discount_percent,
        before.archived_at,
    )
    assert await _codes(app) == codes
    assert (await _plan(app, "free")).archived_at is None


async def test_a_stranger_gets_the_ordinary_answer_and_nothing_changes(
    start_bot: StartBot, tg
) -> None:
    app = await start_bot(ADMIN_IDS=[ADMIN])
    stranger = tg.user(STRANGER)
    await stranger.send_text("/start")
    await stranger.wait_for_text("Привет")
    for command in ("/plans_admin", "/plan_edit pro price=1", "/plan_archive pro"):
        await stranger.send_text(command)
        await stranger.wait_for_text("сначала выберите режим")
    plan = await _plan(app, "pro")
    assert (plan.price, plan.archived_at) == (19_900, None)
    for message in await stranger.bot_messages():
        assert "Тариф" not in message.text and "Сохранено" not in message.text


async def test_an_english_admin_reads_english(start_bot: StartBot, tg) -> None:
    await start_bot(ADMIN_IDS=[ADMIN])
    admin = tg.user(ADMIN, language="en")
    await admin.send_text("/plan_edit pro units=lots")
    answer = await admin.wait_for_message()
    assert answer.text == "units: “lots” is not a whole number of 0 or more. Nothing changed."


def test_every_catalogue_rule_has_its_admin_text_in_both_languages() -> None:
    for language in ("ru", "en"):
        have = keys(language)
        assert {f"admin-plan-error-{code}" for code in PlanInvalid.MESSAGES} <= have
