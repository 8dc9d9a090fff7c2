"""✏️ What users read of the edit language (help lines, step labels) is catalogue text;
the words the parser accepts stay in code."""

from __future__ import annotations

import importlib
from typing import Any, get_args

import pytest

from imaging.instruction import Step, parse_instruction
from texts import edit_texts
from texts.edit_texts import describe_step, describe_steps, known_commands
from texts.i18n import keys, t

edit_module = importlib.import_module("imaging.instruction")
OPS = get_args(edit_module.Op)


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_every_command_has_a_help_line_and_a_label_in_the_catalogue(lang: str) -> None:
    catalogue = keys(lang)
    for op in OPS:
        assert f"edit-help-{op}" in catalogue, op
        assert f"edit-step-{op}" in catalogue, op
    for form in ("percent", "angle", "value"):
        assert f"edit-step-with-{form}" in catalogue


def test_help_lines_and_labels_are_rendered_from_the_catalogue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[str, str, dict[str, Any]]] = []

    def fake_t(key: str, lang: str | None = None, /, **args: Any) -> str:
        seen.append((key, str(lang), args))
        return f"<{key}:{lang}:{args.get('name', '')}{args.get('value', '')}>"

    monkeypatch.setattr(edit_texts, "t", fake_t)
    assert known_commands("ru") == [f"<edit-help-{op}:ru:>" for op in OPS]
    assert known_commands("de") == [f"<edit-help-{op}:en:>" for op in OPS]  # else English
    steps = parse_instruction("ч/б, яркость -20, повернуть влево, blur 7")
    assert describe_steps(steps, "en") == (
        "<edit-step-grayscale:en:>, "
        "<edit-step-with-percent:en:<edit-step-brightness:en:>-20>, "
        "<edit-step-with-angle:en:<edit-step-rotate:en:>270>, "
        "<edit-step-with-value:en:<edit-step-blur:en:>7>"
    )
    help_args = next(args for key, _, args in seen if key == "edit-help-blur")
    assert help_args["blur_max"] == "50" and help_args["percent_min"] == "\u2212100"


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_labels_with_values_use_the_catalogue_forms(lang: str) -> None:
    name = t("edit-step-saturation", lang)
    assert describe_step(Step("saturation", 15), lang) == t(
        "edit-step-with-percent", lang, name=name, value="+15"
    )
    assert describe_step(Step("saturation", 15), lang).endswith(" +15%")
