"""🔄 face_swap: A's face lands on B's face; B elsewhere is unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from imaging.errors import NoFaceFound
from imaging.faceswap import detect_faces, face_swap

from .conftest import decode


def test_fixture_faces_are_detected(astronaut: bytes, hopper: bytes, coffee: bytes) -> None:
    assert len(detect_faces(astronaut)) >= 1
    assert len(detect_faces(hopper)) >= 1
    assert detect_faces(coffee) == []


def test_face_swap_changes_the_face_and_little_else(astronaut: bytes, hopper: bytes) -> None:
    face = detect_faces(hopper)[0]
    before = decode(hopper).astype(np.int32)
    result = face_swap(astronaut, hopper)
    after = decode(result.data).astype(np.int32)
    assert after.shape == before.shape
    assert (result.width, result.height) == (512, 600)
    assert result.params["face_w"] == face.w

    diff = np.abs(after - before).mean(axis=2)
    inside = np.zeros(diff.shape, bool)
    cx, cy = face.x + face.w // 2, face.y + face.h // 2
    inside[cy - face.h // 4 : cy + face.h // 4, cx - face.w // 4 : cx + face.w // 4] = True
    assert diff[inside].mean() > 12, "the inner face did not change"

    margin = face.w // 2
    outside = np.ones(diff.shape, bool)
    outside[
        max(0, face.y - margin) : face.y + face.h + margin,
        max(0, face.x - margin) : face.x + face.w + margin,
    ] = False
    assert diff[outside].mean() < 2, "pixels far from the face changed"


def test_the_swapped_face_looks_like_a(astronaut: bytes, hopper: bytes) -> None:
    """The new face is closer to A's face (scaled onto B's box) than B's old face was."""
    import cv2

    fa, fb = detect_faces(astronaut)[0], detect_faces(hopper)[0]
    a_face = decode(astronaut)[fa.y : fa.y + fa.h, fa.x : fa.x + fa.w]
    a_face = cv2.resize(a_face, (fb.w, fb.h)).astype(np.float32)
    before = decode(hopper)[fb.y : fb.y + fb.h, fb.x : fb.x + fb.w].astype(np.float32)
    after = decode(face_swap(astronaut, hopper).data)[
        fb.y : fb.y + fb.h, fb.x : fb.x + fb.w
    ].astype(np.float32)

    def corr(x: np.ndarray, y: np.ndarray) -> float:
        gx, gy = x.mean(axis=2).ravel(), y.mean(axis=2).ravel()
        return float(np.corrcoef(gx, gy)[0, 1])

    assert corr(after, a_face) > corr(before, a_face) + 0.1


def test_faceless_photo_is_named(astronaut: bytes, coffee: bytes) -> None:
    with pytest.raises(NoFaceFound) as info:
        face_swap(coffee, astronaut)
    assert info.value.which == "a"
    assert "first" in str(info.value)
    with pytest.raises(NoFaceFound) as info:
        face_swap(astronaut, coffee)
    assert info.value.which == "b"
    assert info.value.code == "no-face-found"


def test_cat_is_not_a_face(astronaut: bytes, chelsea_png: bytes) -> None:
    with pytest.raises(NoFaceFound):
        face_swap(astronaut, chelsea_png)
