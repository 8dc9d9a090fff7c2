"""✨ retouch: skin gets smoother, contrast gets fixed, the rest stays."""

from __future__ import annotations

import cv2
import numpy as np

from imaging.faceswap import detect_faces
from imaging.retouch import retouch

from .conftest import decode, to_jpeg


def _texture(arr: np.ndarray) -> float:
    """High-frequency energy: the variance of the Laplacian of the grey image."""
    return float(cv2.Laplacian(cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def test_retouch_smooths_the_face(hopper: bytes) -> None:
    face = detect_faces(hopper)[0]
    before = decode(hopper)
    result = retouch(hopper)
    after = decode(result.data)
    assert after.shape == before.shape
    assert (result.width, result.height) == (512, 600)
    # Inner cheeks/forehead area of the face: less fine texture than before.
    x0, y0 = face.x + face.w // 4, face.y + face.h // 5
    x1, y1 = face.x + 3 * face.w // 4, face.y + 4 * face.h // 5
    assert _texture(after[y0:y1, x0:x1]) < _texture(before[y0:y1, x0:x1]) * 0.9
    assert result.params["skin_percent"] > 0


def test_retouch_stretches_a_washed_out_photo(hopper: bytes) -> None:
    original = decode(hopper).astype(np.float32)
    flat = (original * 0.4 + 90).astype(np.uint8)  # low contrast, greyish
    assert np.percentile(flat, 99) - np.percentile(flat, 1) < 110
    result = decode(retouch(to_jpeg(flat)).data)
    spread_before = np.percentile(flat, 99) - np.percentile(flat, 1)
    spread_after = np.percentile(result, 99) - np.percentile(result, 1)
    assert spread_after > spread_before * 1.3


def test_retouch_keeps_the_picture(astronaut: bytes) -> None:
    before = decode(astronaut).astype(int)
    after = decode(retouch(astronaut).data).astype(int)
    diff = np.abs(after - before).mean()
    assert 0.5 < diff < 40  # visibly changed, still the same photo
