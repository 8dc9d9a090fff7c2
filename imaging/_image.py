"""Decoding, limits, encoding and the result type shared by every operation."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from PIL import Image, ImageOps

from .errors import InvalidImage, Which
from .header import (  # noqa: F401 - re-exported for the operations
    _DECODE_ERRORS,
    ALLOWED_FORMATS,
    MAX_INPUT_BYTES,
    MAX_INPUT_PIXELS,
    MAX_INPUT_SIDE,
    ImageInfo,
    _open,
    _oriented_size,
    bomb_refused,
    probe_image,
)

OutputFormat = Literal["jpeg", "png"]
CaptionValue = str | int | float

WORK_MAX_SIDE = 4096
"""Inputs are reduced to this longest side before an operation works on them."""
JPEG_QUALITY = 90


@dataclass(frozen=True, slots=True)
class MediaResult:
    """The output of an operation.

    ``description_key`` and ``params`` are for the caption: the key names the
    operation (``"media-result-upscale"``), ``params`` hold what the caption may
    show (e.g. ``{"factor": 2, "width": 2048, "height": 1536}``), plain values only.
    """

    data: bytes
    format: OutputFormat
    width: int
    height: int
    op: str
    params: Mapping[str, CaptionValue] = field(default_factory=dict)

    @property
    def description_key(self) -> str:
        return f"media-result-{self.op}"

    @property
    def mime_type(self) -> str:
        return "image/jpeg" if self.format == "jpeg" else "image/png"

    @property
    def filename(self) -> str:
        return f"{self.op}.{'jpg' if self.format == 'jpeg' else 'png'}"


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        arr = np.asarray(img, dtype=np.float32)
        top = float(arr.max()) if arr.size else 0.0
        scale = 255.0 / top if top > 255.0 else 1.0
        gray = np.clip(arr * scale, 0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode == "P" and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def load_image(
    data: bytes,
    *,
    which: Which | None = None,
    max_side: int | None = WORK_MAX_SIDE,
) -> Image.Image:
    """Decode ``data`` into an RGB image, EXIF orientation applied.

    Refuses non-images, truncated files and unsupported formats (InvalidImage)
    and files over the byte/pixel limits or decompression bombs (ImageTooLarge),
    all before decoding pixels. If ``max_side`` is given, a larger image is
    reduced to it (JPEGs already while decoding, via the DCT scaler).
    """
    img = _open(data, which)
    try:
        if max_side is not None and img.format in ("JPEG", "MPO"):
            w, h = img.size
            scale = max(w, h) / max_side
            if scale >= 2:
                img.draft("RGB", (math.ceil(w / scale), math.ceil(h / scale)))
        img.load()
        img = ImageOps.exif_transpose(img)
        img = _to_rgb(img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise bomb_refused(exc, which) from None
    except _DECODE_ERRORS as exc:
        raise InvalidImage(f"unreadable image: {exc}", which=which) from None
    if max_side is not None and max(img.size) > max_side:
        img = fit_within(img, max_side)
    return img


def fit_within(img: Image.Image, max_side: int) -> Image.Image:
    """``img`` reduced (never enlarged) so that its longest side is ``max_side``."""
    w, h = img.size
    if max(w, h) <= max_side:
        return img
    scale = max_side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def encode(img: Image.Image, fmt: OutputFormat = "jpeg") -> bytes:
    buf = io.BytesIO()
    if fmt == "jpeg":
        img.convert("RGB").save(buf, "JPEG", quality=JPEG_QUALITY, subsampling="4:2:0")
    elif fmt == "png":
        img.save(buf, "PNG", compress_level=6)
    else:  # pragma: no cover - guarded by the type
        raise ValueError(f"unknown output format {fmt!r}")
    return buf.getvalue()


def make_result(
    img: Image.Image,
    op: str,
    params: Mapping[str, CaptionValue] | None = None,
    fmt: OutputFormat = "jpeg",
) -> MediaResult:
    w, h = img.size
    merged: dict[str, CaptionValue] = dict(params or {})
    merged.setdefault("width", w)
    merged.setdefault("height", h)
    return MediaResult(data=encode(img, fmt), format=fmt, width=w, height=h, op=op, params=merged)


def to_array(img: Image.Image) -> np.ndarray:
    """RGB image as a writable uint8 HxWx3 array."""
    return np.array(img, dtype=np.uint8)


def from_array(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8))
