"""✏️ Edit: a small instruction language (Russian and English) and its executor.

``parse_instruction("ч/б, яркость +20 и повернуть вправо")`` gives a list of
:class:`Step`; ``apply_edit(data, steps)`` runs them in order. Parsing is pure and
cheap, so the bot parses BEFORE charging and answers an :class:`InstructionError`
with the list of known commands (``known_commands(lang)``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from PIL import Image, ImageChops, ImageEnhance, ImageFilter, ImageOps

from bot.i18n import t
from bot.visible_text import without_invisible

from ._image import MediaResult, from_array, load_image, make_result, to_array
from .errors import InstructionError, NothingChanged

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

    def describe(self, lang: str = "en") -> str:
        """A short human label from the catalogue, e.g. ``"яркость +20%"`` /
        ``"brightness +20%"`` (``lang`` "ru" or "en"; anything else: English)."""
        lang = _language(lang)
        name = t(f"edit-step-{self.op}", lang)
        if self.value is None:
            return name
        arg = _SPECS[self.op].arg if self.op in _SPECS else "none"
        if arg == "percent":
            return t("edit-step-with-percent", lang, name=name, value=f"{self.value:+d}")
        if arg == "angle":
            return t("edit-step-with-angle", lang, name=name, value=str(self.value))
        return t("edit-step-with-value", lang, name=name, value=str(self.value))


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


def _language(lang: str) -> str:
    return "ru" if lang == "ru" else "en"


def _help_args() -> dict[str, str]:
    """The numbers the help lines mention, as strings (Fluent would format numbers)."""
    return {
        "blur_min": str(BLUR_RANGE[0]),
        "blur_max": str(BLUR_RANGE[1]),
        "blur_default": str(BLUR_DEFAULT),
        "percent_min": str(PERCENT_RANGE[0]).replace("-", "\u2212"),
        "percent_max": str(PERCENT_RANGE[1]),
    }


def known_commands(lang: str = "ru") -> list[str]:
    """Help lines for every command (catalogue texts ``edit-help-<op>``), in ``"ru"`` or
    ``"en"`` (anything else: English)."""
    lang = _language(lang)
    args = _help_args()
    return [t(f"edit-help-{spec.op}", lang, **args) for spec in _SPEC_LIST]


def _known() -> dict[str, list[str]]:
    return {"ru": known_commands("ru"), "en": known_commands("en")}


def _error(message: str, reason: str, fragment: str | None = None) -> InstructionError:
    return InstructionError(message, reason=reason, fragment=fragment, known_commands=_known())


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


def describe_steps(steps: Sequence[Step], lang: str = "en") -> str:
    """``"ч/б, яркость +20%"`` — for captions and confirmations."""
    return ", ".join(step.describe(lang) for step in steps)


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
            raise _error(f"bad value {value!r} for {step.op}", "bad-value", step.describe())


# ---------------------------------------------------------------- executors


def _scale(img: Image.Image) -> float:
    """Strength unit: effects are defined for a 1000-px image and scaled with it."""
    return max(img.size) / 1000.0


_SEPIA = np.array(
    [[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], dtype=np.float32
)


def _sepia(img: Image.Image, _: int | None) -> Image.Image:
    arr = cv2.transform(to_array(img).astype(np.float32), _SEPIA)
    return from_array(np.clip(arr, 0, 255).astype(np.uint8))


def _grayscale(img: Image.Image, _: int | None) -> Image.Image:
    return ImageOps.grayscale(img).convert("RGB")


def _blur(img: Image.Image, value: int | None) -> Image.Image:
    radius = max(0.5, (value or BLUR_DEFAULT) * _scale(img))
    return img.filter(ImageFilter.GaussianBlur(radius))


def _sharpen(img: Image.Image, _: int | None) -> Image.Image:
    radius = max(1.0, 1.5 * _scale(img))
    return img.filter(ImageFilter.UnsharpMask(radius=radius, percent=120, threshold=2))


def _brightness(img: Image.Image, value: int | None) -> Image.Image:
    factor = 1.0 + (value or 0) / 100.0
    lut = [min(255, max(0, round(i * factor))) for i in range(256)]
    return img.point(lut * 3)


def _contrast(img: Image.Image, value: int | None) -> Image.Image:
    """Like ImageEnhance.Contrast (scale about the mean grey), as one lookup table."""
    factor = 1.0 + (value or 0) / 100.0
    histogram = img.convert("L").histogram()
    mean = sum(i * n for i, n in enumerate(histogram)) / max(1, sum(histogram))
    lut = [min(255, max(0, round(mean + (i - mean) * factor))) for i in range(256)]
    return img.point(lut * 3)


def _saturation(img: Image.Image, value: int | None) -> Image.Image:
    return ImageEnhance.Color(img).enhance(1.0 + (value or 0) / 100.0)


def _rotate(img: Image.Image, value: int | None) -> Image.Image:
    transpose = {
        90: Image.Transpose.ROTATE_270,  # PIL's ROTATE_n turns counter-clockwise
        180: Image.Transpose.ROTATE_180,
        270: Image.Transpose.ROTATE_90,
    }[value or 90]
    return img.transpose(transpose)


def _crop_square(img: Image.Image, _: int | None) -> Image.Image:
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return img.crop((left, top, left + side, top + side))


_EXECUTORS: dict[str, Callable[[Image.Image, int | None], Image.Image]] = {
    "grayscale": _grayscale,
    "sepia": _sepia,
    "blur": _blur,
    "sharpen": _sharpen,
    "brightness": _brightness,
    "contrast": _contrast,
    "saturation": _saturation,
    "rotate": _rotate,
    "flip_h": lambda img, _: img.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    "flip_v": lambda img, _: img.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
    "crop_square": _crop_square,
    "invert": lambda img, _: ImageOps.invert(img),
}


def apply_edit(data: bytes, steps: Sequence[Step]) -> MediaResult:
    """Run ``steps`` on the image in order."""
    steps = list(steps)
    validate_steps(steps)
    original = img = load_image(data)
    for step in steps:
        img = _EXECUTORS[step.op](img, step.value)
    if img.size == original.size and ImageChops.difference(img, original).getbbox() is None:
        raise NothingChanged(f"{describe_steps(steps)} changes no pixel of this picture")
    return make_result(
        img,
        "edit",
        {
            "steps": describe_steps(steps, "en"),
            "steps_ru": describe_steps(steps, "ru"),
            "count": len(steps),
        },
    )


def edit(data: bytes, instruction: str) -> MediaResult:
    """``apply_edit(data, parse_instruction(instruction))``."""
    return apply_edit(data, parse_instruction(instruction))
