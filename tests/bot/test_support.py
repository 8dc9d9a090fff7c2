"""/privacy and /paysupport over the Telegram emulator with the real dispatcher: the default
privacy text and the operator's own (inline or from a file), the user's recent payments,
the contact, and the next message passed on to the admins with the payment ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from billing import accounts
from billing.payments import start_topup
from bot.app import bot_commands
from tests.bot.conftest import RunningBot, StartBot

ADMIN = 5301
ADMIN2 = 5302


async def test_privacy_default_says_what_is_kept_and_for_how_long(start_bot: StartBot, tg) -> None:
    await start_bot()
    user = tg.user(5310)
    await user.send_text("/privacy")
    text = (await user.wait_for_text("Какие данные хранит Media Lab")).text
    for kept in ("Telegram id", "@username", "язык", "платежи", "Операции"):
        assert kept in text, kept
    assert "через час после выполнения" in text and "7 дней" in text

    english = tg.user(5311, language="en")
    await english.send_text("/privacy")
    text = (await english.wait_for_text("What data Media Lab keeps")).text
    assert "Images" in text and "7 days" in text


async def test_privacy_shows_the_operators_text_as_typed(start_bot: StartBot, tg) -> None:
    await start_bot(PRIVACY_TEXT="Inline <b>policy</b> of ACME")
    user = tg.user(5312)
    await user.send_text("/privacy")
    shown = await user.wait_for_text("of ACME")
    assert shown.text == "Inline <b>policy</b> of ACME"  # theirs, as typed: not our markup


async def test_privacy_file_wins_over_the_setting(start_bot: StartBot, tg, tmp_path: Path) -> None:
    policy = tmp_path / "privacy.txt"
    policy.write_text("Политика ООО «Ромашка»: храним только id.\n", encoding="utf-8")
    await start_bot(PRIVACY_TEXT="ignored", PRIVACY_FILE=str(policy))
    other = tg.user(5313)
    await other.send_text("/privacy")
    assert (await other.wait_for_text("Ромашка")).text.startswith("Политика ООО")


def test_a_missing_privacy_file_is_a_failed_start(tmp_path: Path) -> None:
    from billing.settings import Settings

    with pytest.raises(ValueError, match="PRIVACY_FILE"):
        Settings(PRIVACY_FILE=str(tmp_path / "nope.txt"))


def test_the_command_list_and_help_name_paysupport_and_privacy() -> None:
    from billing.settings import Settings
    from bot.routers.start import help_text

    for lang in ("ru", "en"):
        names = [c.command for c in bot_commands(lang)]
        assert "paysupport" in names and "privacy" in names
        text = help_text(Settings(), lang)
        assert "/paysupport" in text and "/privacy" in text


async def _payment(app: RunningBot, telegram_id: int, amount: int) -> int:
    async with app.sessionmaker() as session:
        account, _ = await accounts.get_or_create_user(
            session, telegram_id=telegram_id, free_operations=0, language="ru"
        )
        await session.commit()
    started = await start_topup(
        app.sessionmaker,
        app.dispatcher["gateway"],
        app.settings,
        user_id=account.id,
        amount=amount,
    )
    return started.payment_id


async def test_paysupport_lists_payments_and_passes_the_next_message_to_the_admins(
    start_bot: StartBot, tg
) -> None:
    # ADMIN2 never opened the bot: Telegram refuses to write to them, the others still get it.
    app = await start_bot(ADMIN_IDS=[ADMIN2, ADMIN], SUPPORT_CONTACT="@acme_support")
    admin = tg.user(ADMIN)
    await admin.send_text("/start")
    await admin.wait_for_text("Привет")
    user = tg.user(5320, username="payer")
    first = await _payment(app, 5320, 30_000)
    second = await _payment(app, 5320, 50_000)

    await user.send_text("/paysupport")
    shown = await user.wait_for_text("Помощь с оплатой")
    assert f"#{second}" in shown.text and f"#{first}" in shown.text
    assert shown.text.index(f"#{second}") < shown.text.index(f"#{first}")  # newest first
    assert "300 ₽" in shown.text and "500 ₽" in shown.text and "ожидает оплаты" in shown.text
    assert "@acme_support" in shown.text
    assert "перешлю его администратору" in shown.text

    await user.send_text("Оплатил, а баланс <0>!")
    await user.wait_for_text("Сообщение передано администратору")
    got = await admin.wait_for_text("/paysupport")
    assert "Оплатил, а баланс <0>!" in got.text
    assert "@payer" in got.text and "5320" in got.text
    assert f"#{first}" in got.text and f"#{second}" in got.text

    # The message after that is an ordinary one again, not another support message.
    await user.send_text("ещё раз")
    await user.wait_for_text("сначала выберите режим")


async def test_paysupport_without_payments_or_admins_still_answers(
    start_bot: StartBot, tg
) -> None:
    await start_bot()
    user = tg.user(5321, language="en")
    await user.send_text("/paysupport")
    shown = await user.wait_for_text("Help with a payment")
    assert "no payments yet" in shown.text
    assert "pass it on" not in shown.text  # nobody to pass it on to
