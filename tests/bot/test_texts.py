"""The catalogue: ru and en have the same keys, and every key the bot uses exists."""

from __future__ import annotations

import re
from pathlib import Path

from bot.app import COMMANDS
from bot.keyboards import modes
from tests.bot.conftest import StartBot
from texts.i18n import keys, t

BOT_DIR = Path(__file__).resolve().parents[2] / "bot"
LOCALES_DIR = Path(__file__).resolve().parents[2] / "texts" / "locales"


def _bot_keys(language: str) -> set[str]:
    path = LOCALES_DIR / language / "bot.ftl"
    return {
        line.split("=", 1)[0].strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line and not line[0].isspace() and "=" in line and not line.startswith("#")
    }


def test_russian_and_english_bot_texts_have_the_same_keys() -> None:
    ru, en = _bot_keys("ru"), _bot_keys("en")
    assert ru == en, f"only in ru: {ru - en}; only in en: {en - ru}"
    assert len(ru) > 50
    assert keys("ru") == keys("en")


def test_every_text_key_the_bot_uses_exists_in_both_languages() -> None:
    used: set[str] = set()
    for path in BOT_DIR.rglob("*.py"):
        used |= set(re.findall(r'"(bot-[a-z0-9_-]+[a-z0-9_])"', path.read_text("utf-8")))
    for mode in modes():
        used |= {
            f"bot-btn-{mode}",
            f"bot-help-{mode}",
            f"bot-mode-{mode}",
            f"bot-op-queued-{mode}",
        }
    used |= {f"bot-cmd-{c}" for c in COMMANDS}
    for language in ("ru", "en"):
        missing = used - _bot_keys(language)
        assert not missing, f"{language}: {missing}"


def test_texts_render_with_their_arguments() -> None:
    args = {"price": "10", "balance": "0", "free_left": 4, "free_total": 4, "name": "A"}
    assert "4 из 4" in t("bot-start", "ru", **args)
    assert "4 of 4" in t("bot-start", "en", **args)
    assert "Списано 10 ₽" in t("bot-op-paid", "ru", how="balance", **args)


async def test_commands_are_registered_with_set_my_commands(start_bot: StartBot, tg) -> None:
    from bot.app import set_commands

    app = await start_bot()
    await set_commands(app.bot)
    calls = await tg.calls("setMyCommands")
    assert len(calls) == 2
    by_language = {c["params"].get("language_code"): c["params"]["commands"] for c in calls}
    assert [c["command"] for c in by_language[None]] == [
        "start",
        "help",
        "balance",
        "plans",
        "history",
        "settings",
        "menu",
        "paysupport",
        "privacy",
    ]
    assert by_language[None][0]["description"] == "Главное меню"
    assert by_language["en"][0]["description"] == "Main menu"


def test_every_plans_text_the_code_uses_exists_in_both_languages() -> None:
    from billing.models import EndReason

    root = BOT_DIR.parent
    used: set[str] = set()
    sources = [*BOT_DIR.rglob("*.py"), *(root / "workers").rglob("*.py")]
    for path in [*sources, root / "texts" / "wallet_texts.py"]:
        used |= set(re.findall(r'"(plans-[a-z0-9_-]+[a-z0-9_])"', path.read_text("utf-8")))
    # Built from a value: a plan_end's reason.
    used |= {f"plans-h-end-{r.value.replace('_', '-')}" for r in EndReason}
    assert len(used) > 60
    for language in ("ru", "en"):
        missing = used - keys(language)
        assert not missing, f"{language}: {missing}"
