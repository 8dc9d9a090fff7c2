"""⬆️ Upscale: Lanczos resampling plus a light unsharp mask."""

from __future__ import annotations

import cv2
import numpy as np

from ._image import (
    MediaResult,
    _open,
    _oriented_size,
    from_array,
    load_image,
    make_result,
    to_array,
)
from .header import (  # noqa: F401 - re-exported: the operation and its check
    ALLOWED_FACTORS,
    DEFAULT_MAX_OUTPUT_PIXELS,
    DEFAULT_MAX_OUTPUT_SIDE,
    check_upscale,
)


def _sharpen(arr: np.ndarray, sigma: float, amount: float) -> np.ndarray:
    blurred = cv2.GaussianBlur(arr, (0, 0), sigmaX=sigma)
    return cv2.addWeighted(arr, 1.0 + amount, blurred, -amount, 0)


def upscale(
    data: bytes,
    *,
    factor: int = 2,
    max_output_pixels: int = DEFAULT_MAX_OUTPUT_PIXELS,
    max_output_side: int = DEFAULT_MAX_OUTPUT_SIDE,
) -> MediaResult:
    """Enlarge ``data`` ``factor`` times (Lanczos) and sharpen it a little.

    The output size is checked against the limits from the header alone, before
    any pixel is decoded; an image whose output would pass them raises
    ImageTooLarge.
    """
    header = _open(data, None)
    width, height = _oriented_size(header)
    out_w, out_h = check_upscale(
        width,
        height,
        factor=factor,
        max_output_pixels=max_output_pixels,
        max_output_side=max_output_side,
    )
    img = load_image(data, max_side=None)
    arr = to_array(img)
    big = cv2.resize(arr, (out_w, out_h), interpolation=cv2.INTER_LANCZOS4)
    big = _sharpen(big, sigma=0.6 * factor, amount=0.6)
    return make_result(from_array(big), "upscale", {"factor": factor})
