"""The words of the edit language: step labels and the help lines of every command.

imaging.instruction parses and knows no language; this words its steps and its
commands from the catalogue (``edit-step-*``, ``edit-help-*``).
"""

from __future__ import annotations

from collections.abc import Sequence

from imaging.instruction import COMMANDS, Step, arg_kind, help_args, steps_from_code
from texts.i18n import t


def _language(lang: str) -> str:
    return "ru" if lang == "ru" else "en"


def describe_step(step: Step, lang: str = "en") -> str:
    """A short human label from the catalogue, e.g. ``"яркость +20%"`` /
    ``"brightness +20%"`` (``lang`` "ru" or "en"; anything else: English)."""
    lang = _language(lang)
    name = t(f"edit-step-{step.op}", lang)
    if step.value is None:
        return name
    arg = arg_kind(step.op)
    if arg == "percent":
        return t("edit-step-with-percent", lang, name=name, value=f"{step.value:+d}")
    if arg == "angle":
        return t("edit-step-with-angle", lang, name=name, value=str(step.value))
    return t("edit-step-with-value", lang, name=name, value=str(step.value))


def describe_steps(steps: Sequence[Step], lang: str = "en") -> str:
    """``"ч/б, яркость +20%"`` — for captions and confirmations."""
    return ", ".join(describe_step(step, lang) for step in steps)


def describe_steps_code(code: str, lang: str = "en") -> str:
    """The words for an edit result's ``params["steps"]`` (imaging.instruction.steps_code)."""
    return describe_steps(steps_from_code(code), lang)


def known_commands(lang: str = "ru") -> list[str]:
    """Help lines for every command (catalogue texts ``edit-help-<op>``), in ``"ru"`` or
    ``"en"`` (anything else: English)."""
    lang = _language(lang)
    args = help_args()
    return [t(f"edit-help-{op}", lang, **args) for op in COMMANDS]
