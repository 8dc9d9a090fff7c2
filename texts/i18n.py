"""The text catalogue: Fluent files under texts/locales/<lang>/*.ftl, Russian by default.

Every text a user sees comes from here (the bot, the worker's captions and refund notices,
the web server's payment messages); no user text is built in handler code.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from fluent.runtime import FluentBundle, FluentResource

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
DEFAULT_LANGUAGE = "ru"
SUPPORTED = ("ru", "en")


def pick_language(telegram_language: str | None) -> str:
    """English for users whose Telegram language is English, Russian for everyone else."""
    if telegram_language and telegram_language.lower().split("-")[0] == "en":
        return "en"
    return DEFAULT_LANGUAGE


@cache
def _bundle(language: str) -> FluentBundle:
    bundle = FluentBundle([language], use_isolating=False)
    for path in sorted((LOCALES_DIR / language).glob("*.ftl")):
        resource = FluentResource(path.read_text(encoding="utf-8"))
        errors = bundle.add_resource(resource)
        if errors:
            raise ValueError(f"{path}: {errors}")
    return bundle


class MissingText(KeyError):
    pass


def t(key: str, language: str | None = None, /, **args: Any) -> str:
    """The text `key` in `language` (a Telegram language code is fine), formatted with args."""
    lang = pick_language(language) if language not in SUPPORTED else language
    for candidate in (lang, DEFAULT_LANGUAGE):
        bundle = _bundle(candidate)
        if bundle.has_message(key):
            message = bundle.get_message(key)
            if message.value is None:
                raise MissingText(key)
            text, errors = bundle.format_pattern(message.value, args)
            if errors:
                raise ValueError(f"{key}: {errors}")
            return text
    raise MissingText(key)


def has(key: str, language: str) -> bool:
    """Whether ``key`` exists in ``language`` (or in Russian, which ``t`` falls back to)."""
    lang = pick_language(language) if language not in SUPPORTED else language
    return any(_bundle(c).has_message(key) for c in (lang, DEFAULT_LANGUAGE))


def keys(language: str) -> set[str]:
    """Every message id of a language (tests compare ru and en)."""
    found: set[str] = set()
    for path in (LOCALES_DIR / language).glob("*.ftl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line and not line[0].isspace() and "=" in line and not line.startswith("#"):
                found.add(line.split("=", 1)[0].strip())
    return found
