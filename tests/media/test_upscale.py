"""⬆️ upscale: twice the size, same picture, a little sharper; limits checked first."""

from __future__ import annotations

import importlib

import cv2
import numpy as np
import pytest

from imaging.errors import ImageTooLarge
from imaging.header import check_upscale
from imaging.upscale import upscale

from .conftest import decode, to_jpeg

upscale_module = importlib.import_module("imaging.upscale")


def test_upscale_doubles_width_and_height(coffee: bytes) -> None:
    result = upscale(coffee)
    assert (result.width, result.height) == (1200, 800)
    assert result.format == "jpeg"
    assert decode(result.data).shape == (800, 1200, 3)
    assert result.op == "upscale"
    assert result.params["factor"] == 2
    assert result.description_key == "media-result-upscale"


def test_upscale_keeps_the_picture_and_sharpens(coffee: bytes) -> None:
    original = decode(coffee)
    big = decode(upscale(coffee).data)
    back = cv2.resize(big, (600, 400), interpolation=cv2.INTER_AREA)
    assert np.abs(back.astype(int) - original.astype(int)).mean() < 6

    plain = cv2.resize(original, (1200, 800), interpolation=cv2.INTER_LANCZOS4)

    def edge_energy(arr: np.ndarray) -> float:
        return float(cv2.Laplacian(cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())

    assert edge_energy(big) > edge_energy(plain) * 1.1


def test_factor_three() -> None:
    data = to_jpeg(np.full((50, 70, 3), 128, np.uint8))
    result = upscale(data, factor=3)
    assert (result.width, result.height) == (210, 150)


def test_over_the_limit_is_refused_before_any_work(
    astronaut: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("pixels were decoded before the limit check")

    monkeypatch.setattr(upscale_module, "load_image", no_decoding)
    monkeypatch.setattr(upscale_module.cv2, "resize", no_decoding)
    with pytest.raises(ImageTooLarge) as info:
        upscale(astronaut, max_output_pixels=1000 * 1000)  # 1024x1024 would be made
    assert (info.value.width, info.value.height) == (1024, 1024)
    assert info.value.limit_pixels == 1_000_000


def test_check_upscale_is_cheap_arithmetic() -> None:
    assert check_upscale(1280, 960) == (2560, 1920)
    assert check_upscale(2048, 2048) == (4096, 4096)  # exactly the default limit
    with pytest.raises(ImageTooLarge):
        check_upscale(2049, 2048)
    with pytest.raises(ImageTooLarge):
        check_upscale(5000, 100)  # 10000 px wide: over the side limit
    with pytest.raises(ImageTooLarge):
        check_upscale(100, 100, max_output_pixels=100 * 100)
    with pytest.raises(ValueError):
        check_upscale(100, 100, factor=7)
