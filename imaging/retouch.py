"""✨ Retouch: automatic levels + skin smoothing (bilateral, on a skin-tone mask).

A portrait retouch: a photo without a face is refused (NoFaceFound) rather than answered
"skin smoothed" for a picture with no skin to smooth.
"""

from __future__ import annotations

import cv2
import numpy as np

from ._image import MediaResult, from_array, load_image, make_result, to_array
from .errors import NoFaceFound
from .faceswap import find_faces

FILTER_SIDE = 768
"""The smoothing runs at this longest side: bilateral filters are slow and their
radius is resolution-dependent; the smoothed layer is upsampled, which on skin
is invisible (it is meant to be soft)."""
SMOOTH_STRENGTH = 0.8
LEVELS_LOW, LEVELS_HIGH = 0.5, 99.5  # percentiles of luminance mapped to 0 and 255
MAX_LEVELS_GAIN = 1.6


def skin_mask(rgb: np.ndarray) -> np.ndarray:
    """Soft skin-tone mask in [0, 1] (float32, HxW): YCrCb box + HSV sanity, feathered."""
    ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    mask = cv2.inRange(ycrcb, (40, 135, 80), (250, 175, 130))
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    # Skin hues are reds-to-yellows; drop saturated oranges and desaturated greys.
    hue_ok = cv2.inRange(hsv, (0, 25, 40), (25, 200, 255)) | cv2.inRange(
        hsv, (165, 25, 40), (180, 200, 255)
    )
    mask &= hue_ok
    side = max(rgb.shape[:2])
    k = max(3, int(side / 200) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
    soft = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), sigmaX=max(1.0, side / 150))
    return soft


def _smooth(rgb: np.ndarray) -> np.ndarray:
    out = cv2.bilateralFilter(rgb, d=11, sigmaColor=75, sigmaSpace=11)
    return cv2.bilateralFilter(out, d=7, sigmaColor=50, sigmaSpace=7)


def _auto_levels(rgb: np.ndarray, sample: np.ndarray) -> np.ndarray:
    """Stretch luminance so its 0.5/99.5 percentiles reach 0/255, the same map on
    every channel so that hues stay. (No CLAHE: local contrast brings back the skin
    texture the smoothing removes.)"""
    luma = cv2.cvtColor(sample, cv2.COLOR_RGB2GRAY)
    low, high = np.percentile(luma, [LEVELS_LOW, LEVELS_HIGH])
    low, high = float(low), float(high)
    if high - low >= 8:
        gain = min(MAX_LEVELS_GAIN, 255.0 / (high - low))
        # Keep the mid-point where the stretch puts it, cap the gain.
        mid = (low + high) / 2
        lut = np.clip((np.arange(256, dtype=np.float32) - mid) * gain + 127.5, 0, 255)
        rgb = cv2.LUT(rgb, lut.astype(np.uint8))
    return rgb


def retouch(data: bytes) -> MediaResult:
    """Fix levels/contrast, then smooth skin (bilateral filter blended on a skin mask).
    Raises NoFaceFound for a photo without a face.

    The smoothing comes last so that the contrast step does not bring the skin
    texture back.
    """
    img = load_image(data)
    rgb = to_array(img)
    if not find_faces(rgb):
        raise NoFaceFound()
    h, w = rgb.shape[:2]
    scale = min(1.0, FILTER_SIDE / max(w, h))
    small_size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if scale < 1.0:
        sample = cv2.resize(rgb, small_size, interpolation=cv2.INTER_AREA)
    else:
        sample = rgb
    rgb = _auto_levels(rgb, sample)
    small = cv2.resize(rgb, small_size, interpolation=cv2.INTER_AREA) if scale < 1.0 else rgb
    smoothed = _smooth(small)
    weight = skin_mask(small) * SMOOTH_STRENGTH
    if scale < 1.0:
        smoothed = cv2.resize(smoothed, (w, h), interpolation=cv2.INTER_LINEAR)
        weight = cv2.resize(weight, (w, h), interpolation=cv2.INTER_LINEAR)
    weight = np.ascontiguousarray(weight, dtype=np.float32)
    out = cv2.blendLinear(smoothed, rgb, weight, 1.0 - weight)
    skin_share = float((weight > 0.2).mean())
    return make_result(from_array(out), "retouch", {"skin_percent": round(skin_share * 100)})
