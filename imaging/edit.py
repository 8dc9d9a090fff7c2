"""✏️ Edit: the executor of the instruction language (:mod:`imaging.instruction`).

``apply_edit(data, steps)`` runs the parsed steps in order; ``edit(data, text)`` parses and
runs. The result's ``params["steps"]`` is :func:`~imaging.instruction.steps_code`: the
caller words it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np
from PIL import Image, ImageChops, ImageEnhance, ImageFilter, ImageOps

from ._image import MediaResult, from_array, load_image, make_result, to_array
from .errors import NothingChanged
from .instruction import (  # noqa: F401 - the language is part of what this module offers
    BLUR_DEFAULT,
    MAX_STEPS,
    Step,
    parse_instruction,
    steps_code,
    validate_steps,
)


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
        raise NothingChanged(f"{steps_code(steps)} changes no pixel of this picture")
    return make_result(
        img,
        "edit",
        {
            "steps": steps_code(steps),
            "count": len(steps),
        },
    )


def edit(data: bytes, instruction: str) -> MediaResult:
    """``apply_edit(data, parse_instruction(instruction))``."""
    return apply_edit(data, parse_instruction(instruction))
