"""✏️ apply_edit: each step does to the pixels what it says."""

from __future__ import annotations

import numpy as np
import pytest

from imaging.edit import apply_edit, edit
from imaging.errors import InstructionError
from imaging.instruction import Step, parse_instruction
from texts.edit_texts import describe_steps_code

from .conftest import decode


def _run(data: bytes, text: str) -> np.ndarray:
    return decode(apply_edit(data, parse_instruction(text)).data).astype(np.int32)


def test_grayscale_makes_channels_equal(coffee: bytes) -> None:
    out = _run(coffee, "ч/б")
    assert out.shape == (400, 600, 3)
    # JPEG chroma is exactly neutral for a grey image: channels match to rounding.
    assert np.abs(out[..., 0] - out[..., 1]).max() <= 2
    assert np.abs(out[..., 1] - out[..., 2]).max() <= 2
    original = decode(coffee).astype(np.int32)
    assert np.abs(original[..., 0] - original[..., 2]).mean() > 20  # it was colourful


def test_sepia_is_warm_and_monotone(astronaut: bytes) -> None:
    out = _run(astronaut, "sepia")
    assert (out[..., 0] >= out[..., 2] - 3).mean() > 0.99  # red over blue everywhere
    assert out[..., 0].mean() > out[..., 1].mean() > out[..., 2].mean()


def test_rotate_90_swaps_dimensions_and_turns_clockwise(coffee: bytes) -> None:
    original = decode(coffee).astype(np.int32)
    result = apply_edit(coffee, [Step("rotate", 90)])
    assert (result.width, result.height) == (400, 600)
    out = decode(result.data).astype(np.int32)
    # Clockwise: the original's left column becomes the top row.
    assert np.abs(out - np.rot90(original, k=-1)).mean() < 4
    left = decode(apply_edit(coffee, [Step("rotate", 270)]).data).astype(np.int32)
    assert np.abs(left - np.rot90(original, k=1)).mean() < 4
    assert np.abs(out - left).mean() > 20


def test_rotate_180_keeps_dimensions(coffee: bytes) -> None:
    result = apply_edit(coffee, [Step("rotate", 180)])
    assert (result.width, result.height) == (600, 400)


def test_crop_square(coffee: bytes, hopper: bytes) -> None:
    for data, side in ((coffee, 400), (hopper, 512)):
        result = apply_edit(data, parse_instruction("обрезать квадрат"))
        assert result.width == result.height == side


def test_brightness_raises_and_lowers_the_mean(coffee: bytes) -> None:
    base = decode(coffee).mean()
    assert _run(coffee, "яркость +30").mean() > base + 10
    assert _run(coffee, "brightness \u221230").mean() < base - 10


def test_contrast_changes_the_spread(coffee: bytes) -> None:
    base = decode(coffee).std()
    assert _run(coffee, "контраст +50").std() > base * 1.2
    assert _run(coffee, "contrast -50").std() < base * 0.8


def test_saturation_down_to_grey(coffee: bytes) -> None:
    out = _run(coffee, "насыщенность -100")
    assert np.abs(out[..., 0] - out[..., 2]).max() <= 3


def test_mirror_and_vertical_flip(coffee: bytes) -> None:
    original = decode(coffee).astype(np.int32)
    assert np.abs(_run(coffee, "отразить") - original[:, ::-1]).mean() < 4
    assert np.abs(_run(coffee, "flip vertical") - original[::-1]).mean() < 4


def test_invert(coffee: bytes) -> None:
    original = decode(coffee).astype(np.int32)
    assert np.abs(_run(coffee, "инверсия") - (255 - original)).mean() < 4


def test_blur_and_sharpen_change_detail(coffee: bytes) -> None:
    def detail(arr: np.ndarray) -> float:
        return float(np.abs(np.diff(arr.mean(axis=2), axis=1)).mean())

    base = detail(decode(coffee).astype(np.int32))
    assert detail(_run(coffee, "размытие 5")) < base * 0.7
    assert detail(_run(coffee, "blur 20")) < detail(_run(coffee, "blur 2"))
    assert detail(_run(coffee, "резкость")) > base * 1.1


def test_steps_apply_in_order_and_caption_lists_them(coffee: bytes) -> None:
    result = edit(coffee, "повернуть 90, обрезать квадрат, ч/б")
    assert (result.width, result.height) == (400, 400)
    assert result.params["count"] == 3
    assert result.params["steps"] == "rotate:90,crop_square,grayscale"  # codes: no texts
    assert describe_steps_code(result.params["steps"], "en") == (
        "rotate 90°, square crop, grayscale"
    )
    assert describe_steps_code(result.params["steps"], "ru") == "поворот 90°, квадрат, ч/б"
    assert result.description_key == "media-result-edit"


def test_apply_edit_refuses_invalid_steps(coffee: bytes) -> None:
    with pytest.raises(InstructionError):
        apply_edit(coffee, [])
    with pytest.raises(InstructionError):
        apply_edit(coffee, [Step("brightness", 900)])
