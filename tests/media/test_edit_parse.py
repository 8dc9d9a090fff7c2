"""✏️ parse_instruction: Russian and English, several commands, numbers, errors."""

from __future__ import annotations

import pytest

from imaging.errors import InstructionError
from imaging.instruction import MAX_STEPS, Step, parse_instruction, validate_steps
from texts.edit_texts import describe_steps, known_commands


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ч/б", [Step("grayscale")]),
        ("ЧБ", [Step("grayscale")]),
        ("Черно-белое", [Step("grayscale")]),
        ("чёрно-белое", [Step("grayscale")]),
        ("grayscale", [Step("grayscale")]),
        ("B&W", [Step("grayscale")]),
        ("black and white", [Step("grayscale")]),
        ("сепия", [Step("sepia")]),
        ("Sepia", [Step("sepia")]),
        ("размытие", [Step("blur", 3)]),
        ("размытие 10", [Step("blur", 10)]),
        ("blur 7", [Step("blur", 7)]),
        ("резкость", [Step("sharpen")]),
        ("sharpen", [Step("sharpen")]),
        ("яркость +20", [Step("brightness", 20)]),
        ("яркость 20", [Step("brightness", 20)]),
        ("яркость -15", [Step("brightness", -15)]),
        ("яркость \u221215", [Step("brightness", -15)]),  # unicode minus
        ("яркость на +30%", [Step("brightness", 30)]),
        ("brightness -100", [Step("brightness", -100)]),
        ("BRIGHTNESS +100%", [Step("brightness", 100)]),
        ("ярче", [Step("brightness", 25)]),
        ("darker", [Step("brightness", -25)]),
        ("контраст +40", [Step("contrast", 40)]),
        ("contrast \u221210", [Step("contrast", -10)]),
        ("насыщенность -50", [Step("saturation", -50)]),
        ("saturation +5", [Step("saturation", 5)]),
        ("повернуть 90", [Step("rotate", 90)]),
        ("повернуть на 180 градусов", [Step("rotate", 180)]),
        ("повернуть 270", [Step("rotate", 270)]),
        ("повернуть вправо", [Step("rotate", 90)]),
        ("повернуть влево", [Step("rotate", 270)]),
        ("повернуть на 90 против часовой", [Step("rotate", 270)]),
        ("rotate 90", [Step("rotate", 90)]),
        ("rotate left", [Step("rotate", 270)]),
        ("rotate -90", [Step("rotate", 270)]),
        ("отразить", [Step("flip_h")]),
        ("отразить по горизонтали", [Step("flip_h")]),
        ("отразить по вертикали", [Step("flip_v")]),
        ("mirror", [Step("flip_h")]),
        ("flip", [Step("flip_h")]),
        ("flip vertical", [Step("flip_v")]),
        ("обрезать квадрат", [Step("crop_square")]),
        ("обрезать до квадрата", [Step("crop_square")]),
        ("crop square", [Step("crop_square")]),
        ("инверсия", [Step("invert")]),
        ("invert", [Step("invert")]),
        ("негатив", [Step("invert")]),
        ("сделай ч/б", [Step("grayscale")]),
        ("please make it sepia", [Step("sepia")]),
        ("  Яркость   +10 .  ", [Step("brightness", 10)]),
    ],
)
def test_single_commands(text: str, expected: list[Step]) -> None:
    assert parse_instruction(text) == expected


def test_several_commands_with_every_separator() -> None:
    text = "ч/б, яркость +20; повернуть вправо\nотразить и размытие 2 and invert then crop square"
    assert parse_instruction(text) == [
        Step("grayscale"),
        Step("brightness", 20),
        Step("rotate", 90),
        Step("flip_h"),
        Step("blur", 2),
        Step("invert"),
        Step("crop_square"),
    ]


def test_mixed_languages_and_case() -> None:
    assert parse_instruction("SEPIA и Контраст −5, Rotate 180") == [
        Step("sepia"),
        Step("contrast", -5),
        Step("rotate", 180),
    ]


def test_separator_words_inside_commands_do_not_split() -> None:
    # "black and white" is one command, not "black" + "white".
    assert parse_instruction("black and white and sharpen") == [
        Step("grayscale"),
        Step("sharpen"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "яркость 101",
        "brightness -150",
        "контраст +1000",
        "blur 0",
        "размытие 51",
        "повернуть 45",
        "rotate 360",
        "яркость",
        "повернуть",
        "яркость много",
        "инверсия 5",
        "blur 2.5",
    ],
)
def test_bad_values_are_refused(text: str) -> None:
    with pytest.raises(InstructionError) as info:
        parse_instruction(text)
    assert info.value.reason == "bad-value"
    assert info.value.fragment
    assert info.value.code == "instruction-error"  # a code: the caller words it


def test_garbage_names_the_fragment_and_lists_known_commands() -> None:
    with pytest.raises(InstructionError) as info:
        parse_instruction("ч/б, сделай красиво, яркость +10")
    error = info.value
    assert error.reason == "unknown"
    assert error.fragment == "сделай красиво"
    assert error.code == "instruction-error"
    # The error is a code with parameters; the answer lists the commands (texts.edit_texts)
    assert any("яркость" in line for line in known_commands("ru"))
    assert any("brightness" in line for line in known_commands("en"))


@pytest.mark.parametrize("text", ["", "   ", ",,,", "\n;\n", " и "])
def test_empty_instruction(text: str) -> None:
    with pytest.raises(InstructionError) as info:
        parse_instruction(text)
    assert info.value.reason == "empty"


def test_too_many_steps() -> None:
    assert len(parse_instruction(", ".join(["инверсия"] * MAX_STEPS))) == MAX_STEPS
    with pytest.raises(InstructionError) as info:
        parse_instruction(", ".join(["инверсия"] * (MAX_STEPS + 1)))
    assert info.value.reason == "too-many"


def test_too_long_text() -> None:
    with pytest.raises(InstructionError) as info:
        parse_instruction("ч/б " + " " * 1000)
    assert info.value.reason == "too-long"


def test_known_commands_cover_every_operation_in_both_languages() -> None:
    ru, en = known_commands("ru"), known_commands("en")
    assert len(ru) == len(en) == 12
    assert ru != en
    for word in (
        "ч/б",
        "сепия",
        "размытие",
        "резкость",
        "яркость",
        "контраст",
        "насыщенность",
        "повернуть",
        "отразить",
        "обрезать квадрат",
        "инверсия",
    ):
        assert any(word in line for line in ru), word
    for word in (
        "grayscale",
        "sepia",
        "blur",
        "sharpen",
        "brightness",
        "contrast",
        "saturation",
        "rotate",
        "mirror",
        "flip vertical",
        "crop square",
        "invert",
    ):
        assert any(word in line for line in en), word


def test_describe_steps() -> None:
    steps = parse_instruction("ч/б, яркость -20, повернуть влево")
    assert describe_steps(steps, "ru") == "ч/б, яркость -20%, поворот 270°"
    assert describe_steps(steps, "en") == "grayscale, brightness -20%, rotate 270°"


def test_validate_steps_checks_hand_made_steps() -> None:
    validate_steps([Step("brightness", 10)])
    for bad in (
        [],
        [Step("brightness", 500)],
        [Step("rotate", 45)],
        [Step("invert", 3)],
        [Step("explode")],
    ):  # type: ignore[arg-type]
        with pytest.raises(InstructionError):
            validate_steps(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("яркость +20 контраст -10", [Step("brightness", 20), Step("contrast", -10)]),
        (
            "brightness +10 contrast -5 sepia",
            [Step("brightness", 10), Step("contrast", -5), Step("sepia")],
        ),
        ("ч/б повернуть 90", [Step("grayscale"), Step("rotate", 90)]),
        ("яркость +20 сделай контраст -10", [Step("brightness", 20), Step("contrast", -10)]),
        ("яркость: +20", [Step("brightness", 20)]),
        ("contrast=10", [Step("contrast", 10)]),
    ],
)
def test_commands_without_separators_and_with_a_colon(text: str, expected: list[Step]) -> None:
    assert parse_instruction(text) == expected


def test_a_run_with_an_unknown_part_is_still_an_error() -> None:
    with pytest.raises(InstructionError):
        parse_instruction("яркость +20 абракадабра")
