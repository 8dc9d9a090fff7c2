"""The edit instruction language (Russian and English): parsed before the charge.

``parse_instruction("ч/б, яркость +20 и повернуть вправо")`` gives a list of :class:`Step`;
:mod:`imaging.edit` runs them. Pure and cheap (no image library), so the bot parses before
charging; an :class:`InstructionError` carries a reason code, and the caller words it with
the list of known commands (texts.edit_texts.known_commands).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .errors import InstructionError
from .visible_text import without_invisible

MAX_STEPS = 10
MAX_INSTRUCTION_LENGTH = 500
BLUR_RANGE = (1, 50)
BLUR_DEFAULT = 3
PERCENT_RANGE = (-100, 100)
ANGLES = (90, 180, 270)
FIXED_DELTA = 25  # "ярче" / "brighter" and friends

Op = Literal[
    "grayscale",
    "sepia",
    "blur",
    "sharpen",
    "brightness",
    "contrast",
    "saturation",
    "rotate",
    "flip_h",
    "flip_v",
    "crop_square",
    "invert",
]
ArgKind = Literal["none", "level", "percent", "angle"]


@dataclass(frozen=True, slots=True)
class Step:
    """One edit step. ``value``: blur level 1..50, percent -100..100 for
    brightness/contrast/saturation, degrees clockwise (90/180/270) for rotate,
    ``None`` for the rest."""

    op: Op
    value: int | None = None


@dataclass(frozen=True, slots=True)
class _Spec:
    op: Op
    arg: ArgKind
    aliases: tuple[str, ...]
    fixed: tuple[tuple[str, int], ...] = ()  # alias -> value ("ярче" -> +25)


_SPEC_LIST: tuple[_Spec, ...] = (
    _Spec(
        "grayscale",
        "none",
        (
            "ч/б",
            "чб",
            "ч-б",
            "черно-белое",
            "черно-белый",
            "черно-белая",
            "черно-белым",
            "черно белое",
            "черно белый",
            "монохром",
            "grayscale",
            "greyscale",
            "gray",
            "grey",
            "b&w",
            "b/w",
            "bw",
            "monochrome",
        ),
    ),
    _Spec("sepia", "none", ("сепия", "сепию", "sepia")),
    _Spec(
        "blur",
        "level",
        ("размытие", "размыть", "размой", "blur"),
    ),
    _Spec(
        "sharpen",
        "none",
        ("резкость", "резче", "sharpen", "sharpness", "sharper"),
    ),
    _Spec(
        "brightness",
        "percent",
        ("яркость", "brightness"),
        (
            ("ярче", FIXED_DELTA),
            ("темнее", -FIXED_DELTA),
            ("светлее", FIXED_DELTA),
            ("brighter", FIXED_DELTA),
            ("darker", -FIXED_DELTA),
            ("lighter", FIXED_DELTA),
        ),
    ),
    _Spec(
        "contrast",
        "percent",
        ("контраст", "контрастность", "contrast"),
        (("контрастнее", FIXED_DELTA), ("more contrast", FIXED_DELTA)),
    ),
    _Spec(
        "saturation",
        "percent",
        ("насыщенность", "saturation"),
        (("насыщеннее", FIXED_DELTA), ("ярче цвета", FIXED_DELTA)),
    ),
    _Spec(
        "rotate",
        "angle",
        ("повернуть", "поверни", "поворот", "rotate", "turn"),
    ),
    _Spec(
        "flip_h",
        "none",
        (
            "отразить",
            "отрази",
            "отразить по горизонтали",
            "отрази по горизонтали",
            "отразить горизонтально",
            "зеркало",
            "зеркально",
            "отзеркалить",
            "mirror",
            "flip",
            "flip horizontal",
            "flip horizontally",
            "horizontal flip",
            "mirror horizontally",
        ),
    ),
    _Spec(
        "flip_v",
        "none",
        (
            "отразить по вертикали",
            "отрази по вертикали",
            "отразить вертикально",
            "flip vertical",
            "flip vertically",
            "vertical flip",
            "mirror vertically",
            "upside down",
            "вверх ногами",
        ),
    ),
    _Spec(
        "crop_square",
        "none",
        (
            "обрезать квадрат",
            "обрезать до квадрата",
            "обрезать в квадрат",
            "обрезать по квадрату",
            "обрежь квадрат",
            "обрежь до квадрата",
            "обрежь в квадрат",
            "квадрат",
            "crop square",
            "crop to square",
            "crop to a square",
            "square crop",
            "square",
        ),
    ),
    _Spec(
        "invert",
        "none",
        ("инверсия", "инвертировать", "инвертируй", "негатив", "invert", "negative", "inverse"),
    ),
)
_SPECS: dict[str, _Spec] = {spec.op: spec for spec in _SPEC_LIST}

# (alias, spec, fixed value or None), longest alias first so that
# "отразить по вертикали" wins over "отразить".
_ALIASES: list[tuple[str, _Spec, int | None]] = sorted(
    [(alias, spec, None) for spec in _SPEC_LIST for alias in spec.aliases]
    + [(alias, spec, value) for spec in _SPEC_LIST for alias, value in spec.fixed],
    key=lambda item: -len(item[0]),
)

_FILLER_WORDS = frozenset(
    "сделай сделать сделайте добавь добавить добавьте примени применить примените "
    "пожалуйста плиз please make add apply do it".split()
)
_TRAILING_NOISE = frozenset(
    "фото фотку фотографию картинку изображение снимок цвета цвет photo picture image "
    "pic it colors colours please пожалуйста".split()
)
_SEPARATORS = re.compile(
    r"[,;\n]+|\.(?=\s|$)"
    r"|\s+(?:и потом|и затем|а потом|а затем|and then|потом|затем|и|and|then)\s+"
)
_DASHES = str.maketrans({"\u2212": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "ё": "е"})
_PERCENT_RE = re.compile(
    r"^(?:на|by|to)?\s*([+-]?)\s*(\d{1,6})\s*(?:%|процентов|процента|процент|percent)?$"
)
_LEVEL_RE = re.compile(r"^(?:на|by|level|уровень)?\s*(\d{1,6})$")
_ANGLE_RE = re.compile(
    r"^(?:на|by)?\s*(?:([+-]?)\s*(\d{1,6})\s*(?:°|градусов|градуса|градус|deg|degrees|degree)?)?"
    r"\s*(.*?)$"
)
_CW_WORDS = frozenset(
    ["вправо", "направо", "по часовой", "по часовой стрелке", "right", "clockwise", "cw"]
)
_CCW_WORDS = frozenset(
    [
        "влево",
        "налево",
        "против часовой",
        "против часовой стрелки",
        "left",
        "counterclockwise",
        "counter-clockwise",
        "anticlockwise",
        "anti-clockwise",
        "ccw",
    ]
)


def help_args() -> dict[str, str]:
    """The numbers the help lines mention, as strings (Fluent would format numbers)."""
    return {
        "blur_min": str(BLUR_RANGE[0]),
        "blur_max": str(BLUR_RANGE[1]),
        "blur_default": str(BLUR_DEFAULT),
        "percent_min": str(PERCENT_RANGE[0]).replace("-", "\u2212"),
        "percent_max": str(PERCENT_RANGE[1]),
    }


COMMANDS: tuple[Op, ...] = tuple(spec.op for spec in _SPEC_LIST)
"""Every command, in the order the help lists them (texts.edit_texts words them)."""


def arg_kind(op: str) -> ArgKind:
    """How a step's value reads: a blur level, a percent, an angle, or none."""
    spec = _SPECS.get(op)  # type: ignore[call-overload]
    return spec.arg if spec is not None else "none"


def _error(message: str, reason: str, fragment: str | None = None) -> InstructionError:
    return InstructionError(message, reason=reason, fragment=fragment)


def _normalize(text: str) -> str:
    # A zero-width space inside "ч/б" would otherwise make it an unknown command.
    text = without_invisible(text).translate(_DASHES).lower()
    text = re.sub(r"black\s*(?:and|&|-and-)\s*white", "b&w", text)
    text = re.sub(r"[ \t\u00a0]+", " ", text)
    return text


def _strip_fillers(fragment: str) -> str:
    words = fragment.split(" ")
    while words and words[0] in _FILLER_WORDS:
        words.pop(0)
    while words and words[-1] in _TRAILING_NOISE:
        words.pop()
    return " ".join(words)


def _match(fragment: str) -> tuple[str, _Spec, int | None] | None:
    for alias, spec, fixed in _ALIASES:
        if fragment == alias:
            return alias, spec, fixed
        if fragment.startswith(alias) and not fragment[len(alias)].isalpha():
            return alias, spec, fixed
    return None


def _parse_percent(rest: str, original: str) -> int:
    m = _PERCENT_RE.match(rest)
    if not m:
        raise _error(
            f"{original!r}: expected a number from {PERCENT_RANGE[0]} to {PERCENT_RANGE[1]}",
            "bad-value",
            original,
        )
    value = int(m.group(2)) * (-1 if m.group(1) == "-" else 1)
    if not PERCENT_RANGE[0] <= value <= PERCENT_RANGE[1]:
        raise _error(
            f"{original!r}: {value} is out of range {PERCENT_RANGE[0]}..{PERCENT_RANGE[1]}",
            "bad-value",
            original,
        )
    return value


def _parse_level(rest: str, original: str) -> int:
    if not rest:
        return BLUR_DEFAULT
    m = _LEVEL_RE.match(rest)
    value = int(m.group(1)) if m else None
    if value is None or not BLUR_RANGE[0] <= value <= BLUR_RANGE[1]:
        raise _error(
            f"{original!r}: expected a level from {BLUR_RANGE[0]} to {BLUR_RANGE[1]}",
            "bad-value",
            original,
        )
    return value


def _parse_angle(rest: str, original: str) -> int:
    m = _ANGLE_RE.match(rest)
    bad = _error(f"{original!r}: expected 90, 180, 270, left or right", "bad-value", original)
    if not m:
        raise bad
    sign, digits, direction = m.group(1), m.group(2), m.group(3).strip()
    if direction in _CW_WORDS:
        clockwise = True
    elif direction in _CCW_WORDS:
        clockwise = False
    elif direction == "":
        clockwise = True
    else:
        raise bad
    if digits is None:
        if direction == "":
            raise bad
        degrees = 90
    else:
        degrees = int(digits)
    if sign == "-":
        clockwise = not clockwise
    if degrees not in ANGLES:
        raise bad
    return degrees if clockwise else 360 - degrees


def _parse_fragment(fragment: str) -> Step:
    original = fragment
    cleaned = _strip_fillers(fragment)
    found = _match(cleaned)
    if found is None:
        raise _error(f"unknown command {original!r}", "unknown", original)
    alias, spec, fixed = found
    rest = cleaned[len(alias) :].strip(" :=")  # "яркость: +20", "contrast=10"
    if fixed is not None:
        if rest:
            raise _error(f"unknown command {original!r}", "unknown", original)
        return Step(spec.op, fixed)
    if spec.arg == "none":
        if rest:
            raise _error(f"{original!r}: {alias!r} takes no value", "bad-value", original)
        return Step(spec.op)
    if spec.arg == "percent":
        return Step(spec.op, _parse_percent(rest, original))
    if spec.arg == "level":
        return Step(spec.op, _parse_level(rest, original))
    return Step(spec.op, _parse_angle(rest, original))


def parse_instruction(text: str) -> list[Step]:
    """Parse an edit instruction into steps, or raise InstructionError.

    Case-insensitive, Russian and English, several commands separated by
    commas, ";", newlines, "и" / "and" / "then". Numbers may carry "+", "-" or the
    unicode minus "−" and a "%". At most ``MAX_STEPS`` steps.
    """
    if not isinstance(text, str):
        raise TypeError("instruction must be a string")
    if len(text) > MAX_INSTRUCTION_LENGTH:
        raise _error(f"instruction is longer than {MAX_INSTRUCTION_LENGTH} characters", "too-long")
    normalized = _normalize(text)
    fragments = [
        part.strip(" .!?:\t\u00a0") for part in _SEPARATORS.split(normalized) if part is not None
    ]
    fragments = [f for f in fragments if f]
    if not fragments:
        raise _error("empty instruction", "empty")
    if len(fragments) > MAX_STEPS:
        raise _error(f"more than {MAX_STEPS} commands", "too-many")
    steps: list[Step] = []
    for fragment in fragments:
        steps.extend(_parse_run(fragment))
    if len(steps) > MAX_STEPS:
        raise _error(f"more than {MAX_STEPS} commands", "too-many")
    if all(step.value == 0 and _SPECS[step.op].arg == "percent" for step in steps):
        # "яркость 0": known before the charge to change nothing.
        raise _error("every step is a change by 0 %", "no-effect", text.strip())
    return steps


def _parse_run(fragment: str) -> list[Step]:
    """One command, or several written without separators ("яркость +20 контраст -10"):
    split where another command starts, if every part is then a command. Otherwise the
    error of the whole fragment stands."""
    try:
        return [_parse_fragment(fragment)]
    except InstructionError as whole:
        words = fragment.split(" ")
        starts = [0] + [
            i for i in range(1, len(words)) if _match(_strip_fillers(" ".join(words[i:])))
        ]
        # "яркость +20 сделай контраст -10": the command starts at the filler word, not after.
        starts = [
            i for i in starts if not (i > 0 and i - 1 in starts and words[i - 1] in _FILLER_WORDS)
        ]
        if len(starts) == 1:
            raise
        parts = [
            " ".join(words[a:b]) for a, b in zip(starts, [*starts[1:], len(words)], strict=True)
        ]
        try:
            return [_parse_fragment(part) for part in parts]
        except InstructionError:
            raise whole from None


def steps_code(steps: Sequence[Step]) -> str:
    """The steps as plain data for a result's caption, e.g. ``"grayscale,brightness:-20"``;
    the caller words it (texts.edit_texts.describe_steps_code)."""
    return ",".join(s.op if s.value is None else f"{s.op}:{s.value}" for s in steps)


def steps_from_code(code: str) -> list[Step]:
    """The inverse of :func:`steps_code` (an unknown op is kept: the wording falls back)."""
    steps = []
    for part in filter(None, code.split(",")):
        op, _, value = part.partition(":")
        steps.append(Step(op, int(value) if value else None))  # type: ignore[arg-type]
    return steps


def validate_steps(steps: Sequence[Step]) -> None:
    """Check steps built by hand (or deserialized) the way the parser would."""
    if not steps:
        raise _error("no edit steps", "empty")
    if len(steps) > MAX_STEPS:
        raise _error(f"more than {MAX_STEPS} commands", "too-many")
    for step in steps:
        spec = _SPECS.get(step.op)
        if spec is None:
            raise _error(f"unknown operation {step.op!r}", "unknown", str(step.op))
        value = step.value
        ok = {
            "none": value is None,
            "level": isinstance(value, int) and BLUR_RANGE[0] <= value <= BLUR_RANGE[1],
            "percent": isinstance(value, int) and PERCENT_RANGE[0] <= value <= PERCENT_RANGE[1],
            "angle": value in ANGLES,
        }[spec.arg]
        if not ok:
            raise _error(f"bad value {value!r} for {step.op}", "bad-value", steps_code([step]))


# ---------------------------------------------------------------- executors
