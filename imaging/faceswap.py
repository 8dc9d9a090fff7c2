"""🔄 Face swap: the largest face of photo A onto the largest face of photo B.

Classic pipeline, no model weights: Haar cascades (shipped by
opencv-python-headless 4.x, ``cv2.data.haarcascades``) find the faces, an affine
transform maps A's face rectangle onto B's (rotated by the difference of the eye
lines when both pairs of eyes are found), and ``cv2.seamlessClone`` blends an
elliptical patch so that B's lighting and skin tone carry over.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ._image import MediaResult, from_array, load_image, make_result, to_array
from .errors import NoFaceFound, Which

FACE_CASCADES = ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml")
EYE_CASCADE = "haarcascade_eye.xml"
DETECT_SIDE = 640  # detection runs on a copy at most this large
MIN_FACE_SHARE = 12  # a face is at least 1/12 of the short side (smaller ones: not swappable)
CLONE_SIDE = 640  # the Poisson blend runs on a face region at most this large
MAX_ROTATION = 30.0
ELLIPSE_AXES = (0.40, 0.52)  # of the face rectangle's width and height
ROI_MARGIN = 0.35


@dataclass(frozen=True, slots=True)
class FaceBox:
    """A detected face, in pixels of the image as the operations see it."""

    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        return self.w * self.h

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2


def _cascade(name: str) -> cv2.CascadeClassifier:
    """A classifier per thread: OpenCV does not promise that one instance may run
    detectMultiScale from several threads at once (the job layer uses threads)."""
    return _thread_cascade(name, threading.get_ident())


@lru_cache(maxsize=32)
def _thread_cascade(name: str, thread_id: int) -> cv2.CascadeClassifier:
    path = cv2.data.haarcascades + name
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():  # pragma: no cover - a broken OpenCV install
        raise RuntimeError(f"cannot load Haar cascade {path}")
    return cascade


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


def find_faces(rgb: np.ndarray) -> list[FaceBox]:
    """Faces in an RGB array, largest first (default cascade, then alt2 as fallback)."""
    h, w = rgb.shape[:2]
    scale = min(1.0, DETECT_SIDE / max(h, w))
    small = rgb
    if scale < 1.0:
        small = cv2.resize(
            rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
        )
    gray = _gray(small)
    min_side = max(24, min(gray.shape[:2]) // MIN_FACE_SHARE)
    for name in FACE_CASCADES:
        found = _cascade(name).detectMultiScale(
            gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side)
        )
        if len(found):
            boxes = [
                FaceBox(round(x / scale), round(y / scale), round(fw / scale), round(fh / scale))
                for x, y, fw, fh in found
            ]
            return sorted(boxes, key=lambda box: box.area, reverse=True)
    return []


def detect_faces(data: bytes, *, which: Which | None = None) -> list[FaceBox]:
    """Faces in an image file, largest first; the bot may call it before charging."""
    return find_faces(to_array(load_image(data, which=which)))


def _eye_angle(rgb: np.ndarray, face: FaceBox) -> float | None:
    """Angle (degrees, image coordinates) of the line through the eyes, or None."""
    upper = rgb[face.y : face.y + int(face.h * 0.6), face.x : face.x + face.w]
    if upper.size == 0:
        return None
    gray = _gray(upper)
    min_eye = max(8, face.w // 10)
    eyes = _cascade(EYE_CASCADE).detectMultiScale(
        gray, scaleFactor=1.1, minNeighbors=6, minSize=(min_eye, min_eye)
    )
    if len(eyes) < 2:
        return None
    two = sorted(eyes, key=lambda e: e[2] * e[3], reverse=True)[:2]
    (x1, y1, w1, h1), (x2, y2, w2, h2) = sorted(two, key=lambda e: e[0])
    c1 = (x1 + w1 / 2, y1 + h1 / 2)
    c2 = (x2 + w2 / 2, y2 + h2 / 2)
    half = face.w / 2
    if not (c1[0] < half < c2[0]):
        return None
    angle = math.degrees(math.atan2(c2[1] - c1[1], c2[0] - c1[0]))
    return angle if abs(angle) <= MAX_ROTATION else None


def _relative_rotation(ra: np.ndarray, fa: FaceBox, rb: np.ndarray, fb: FaceBox) -> float:
    """cv2 angle (counter-clockwise positive) turning A's eye line onto B's; 0 if unknown."""
    angle_a, angle_b = _eye_angle(ra, fa), _eye_angle(rb, fb)
    if angle_a is None or angle_b is None:
        return 0.0
    return float(np.clip(angle_a - angle_b, -MAX_ROTATION, MAX_ROTATION))


def _ellipse_mask(size: tuple[int, int], center: tuple[float, float], axes: tuple[float, float]):
    width, height = size
    mask = np.zeros((height, width), np.uint8)
    cv2.ellipse(
        mask,
        (round(center[0]), round(center[1])),
        (max(1, round(axes[0])), max(1, round(axes[1]))),
        0,
        0,
        360,
        255,
        thickness=-1,
    )
    mask[:2, :] = 0
    mask[-2:, :] = 0
    mask[:, :2] = 0
    mask[:, -2:] = 0
    return mask


def _match_colors(src: np.ndarray, dst: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Shift src's LAB mean/std inside the mask toward dst's (skin tone, lighting)."""
    sel = mask > 0
    src_lab = cv2.cvtColor(src, cv2.COLOR_RGB2LAB).astype(np.float32)
    dst_lab = cv2.cvtColor(dst, cv2.COLOR_RGB2LAB).astype(np.float32)
    for c in range(3):
        s_vals, d_vals = src_lab[:, :, c][sel], dst_lab[:, :, c][sel]
        s_mean, s_std = float(s_vals.mean()), float(s_vals.std()) + 1e-3
        d_mean, d_std = float(d_vals.mean()), float(d_vals.std()) + 1e-3
        ratio = float(np.clip(d_std / s_std, 0.5, 2.0))
        src_lab[:, :, c] = (src_lab[:, :, c] - s_mean) * ratio + d_mean
    return cv2.cvtColor(np.clip(src_lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def swap_arrays(ra: np.ndarray, rb: np.ndarray) -> tuple[np.ndarray, FaceBox]:
    """Face swap on RGB arrays; returns the new B and the face box it changed."""
    faces_a, faces_b = find_faces(ra), find_faces(rb)
    if not faces_a or not faces_b:
        # Name every photo without a face, so that one retry fixes both.
        raise NoFaceFound("both" if not faces_a and not faces_b else "a" if not faces_a else "b")
    fa, fb = faces_a[0], faces_b[0]
    rotation = _relative_rotation(ra, fa, rb, fb)

    height, width = rb.shape[:2]
    mx, my = round(fb.w * ROI_MARGIN), round(fb.h * ROI_MARGIN)
    x0, y0 = max(0, fb.x - mx), max(0, fb.y - my)
    x1, y1 = min(width, fb.x + fb.w + mx), min(height, fb.y + fb.h + my)
    roi_w, roi_h = x1 - x0, y1 - y0
    s = min(1.0, CLONE_SIDE / max(roi_w, roi_h))
    sw, sh = max(1, round(roi_w * s)), max(1, round(roi_h * s))

    # A -> B: rotate and scale about A's face centre, move it onto B's face centre,
    # then into the (scaled) region of interest.
    (ax, ay), (bx, by) = fa.center, fb.center
    matrix = cv2.getRotationMatrix2D((ax, ay), rotation, fb.w / fa.w)
    matrix[0, 2] += bx - ax - x0
    matrix[1, 2] += by - ay - y0
    matrix *= s
    src = cv2.warpAffine(
        ra, matrix, (sw, sh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    dst_roi = rb[y0:y1, x0:x1]
    dst = cv2.resize(dst_roi, (sw, sh), interpolation=cv2.INTER_AREA) if s < 1.0 else dst_roi
    center_small = ((bx - x0) * s, (by - y0) * s)
    axes_small = (fb.w * ELLIPSE_AXES[0] * s, fb.h * ELLIPSE_AXES[1] * s)
    mask = _ellipse_mask((sw, sh), center_small, axes_small)
    if not mask.any():  # pragma: no cover - faces are at least 24 px
        raise NoFaceFound("b")
    src = _match_colors(src, dst, mask)
    bx_, by_, bw_, bh_ = cv2.boundingRect(mask)
    clone_center = (bx_ + bw_ // 2, by_ + bh_ // 2)
    cloned = cv2.seamlessClone(
        src, np.ascontiguousarray(dst), mask, clone_center, cv2.NORMAL_CLONE
    )
    if s < 1.0:
        cloned = cv2.resize(cloned, (roi_w, roi_h), interpolation=cv2.INTER_CUBIC)

    # Composite at full resolution through a feathered ellipse: outside it B is untouched.
    full_mask = _ellipse_mask(
        (roi_w, roi_h), (bx - x0, by - y0), (fb.w * ELLIPSE_AXES[0], fb.h * ELLIPSE_AXES[1])
    )
    weight = cv2.GaussianBlur(
        full_mask.astype(np.float32) / 255.0, (0, 0), sigmaX=max(1.0, fb.w * 0.02)
    )
    out = rb.copy()
    out[y0:y1, x0:x1] = cv2.blendLinear(
        np.ascontiguousarray(cloned), np.ascontiguousarray(dst_roi), weight, 1.0 - weight
    )
    return out, fb


def face_swap(a: bytes, b: bytes) -> MediaResult:
    """Put the largest face of photo ``a`` onto the largest face of photo ``b``.

    Raises NoFaceFound("a") / NoFaceFound("b") naming the photo without a face.
    """
    ra = to_array(load_image(a, which="a"))
    rb = to_array(load_image(b, which="b"))
    out, face = swap_arrays(ra, rb)
    return make_result(
        from_array(out),
        "faceswap",
        {"face_x": face.x, "face_y": face.y, "face_w": face.w, "face_h": face.h},
    )
