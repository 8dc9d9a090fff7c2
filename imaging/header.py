"""The light half of imaging: an image's header (size, format) and the input limits,
read without decoding pixels and without OpenCV or numpy, so the bot process can refuse a
photo before the charge without loading the image libraries the workers use."""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ImageTooLarge, InvalidImage, Which

if TYPE_CHECKING:
    from PIL import Image

MAX_INPUT_BYTES = 25 * 1024 * 1024
"""Larger files are refused unread (Telegram lets a bot download at most 20 MB)."""
MAX_INPUT_PIXELS = 50_000_000
"""A header announcing more pixels than this is refused before decoding (48 MP phones fit)."""
MAX_INPUT_SIDE = 16_384
"""Neither side of an input may be longer than this."""
# Formats a user photo comes in (JPEG covers MPO). No EPS (runs Ghostscript), no exotic plugins.
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")

_DECODE_ERRORS = (
    OSError,  # includes UnidentifiedImageError and "image file is truncated"
    ValueError,
    SyntaxError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    MemoryError,
)


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What the header says: displayed size (EXIF orientation applied) and format."""

    width: int
    height: int
    format: str


def bomb_refused(exc: Exception, which: Which | None) -> ImageTooLarge:
    """The answer to an image Pillow takes for a decompression bomb (header or decode)."""
    return ImageTooLarge(
        f"decompression bomb refused: {exc}",
        width=None,
        height=None,
        limit_pixels=MAX_INPUT_PIXELS,
        which=which,
    )


def _open(data: bytes, which: Which | None) -> Image.Image:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"image data must be bytes, not {type(data).__name__}")
    if len(data) == 0:
        raise InvalidImage("empty file", which=which)
    if len(data) > MAX_INPUT_BYTES:
        raise ImageTooLarge(
            f"file of {len(data)} bytes is over the {MAX_INPUT_BYTES}-byte limit",
            width=None,
            height=None,
            limit_pixels=MAX_INPUT_PIXELS,
            which=which,
        )
    # Pillow is imported here, not above: the bot process imports this module for its
    # limits and loads Pillow (~4 MB) only when it first reads a header.
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(bytes(data)), formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise bomb_refused(exc, which) from None
    except UnidentifiedImageError:
        raise InvalidImage("not an image (or an unsupported format)", which=which) from None
    except _DECODE_ERRORS as exc:
        raise InvalidImage(f"unreadable image: {exc}", which=which) from None
    w, h = img.size
    if w < 1 or h < 1:
        raise InvalidImage("image has no pixels", which=which)
    if w * h > MAX_INPUT_PIXELS or max(w, h) > MAX_INPUT_SIDE:
        raise ImageTooLarge(
            f"{w}x{h} is over the input limit ({MAX_INPUT_PIXELS} pixels, "
            f"{MAX_INPUT_SIDE} per side)",
            width=w,
            height=h,
            limit_pixels=MAX_INPUT_PIXELS,
            which=which,
        )
    return img


def _oriented_size(img: Image.Image) -> tuple[int, int]:
    w, h = img.size
    try:
        orientation = img.getexif().get(0x0112, 1)
    except _DECODE_ERRORS:
        orientation = 1
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def probe_image(data: bytes, *, which: Which | None = None) -> ImageInfo:
    """Read only the header: displayed size and format. Raises like :func:`load_image`.

    Cheap (no pixel decoding): the bot can call it before charging.
    """
    img = _open(data, which)
    w, h = _oriented_size(img)
    return ImageInfo(width=w, height=h, format=(img.format or "").lower())


DEFAULT_MAX_OUTPUT_PIXELS = 4096 * 4096
DEFAULT_MAX_OUTPUT_SIDE = 8192
ALLOWED_FACTORS = (2, 3, 4)


def check_upscale(
    width: int,
    height: int,
    *,
    factor: int = 2,
    max_output_pixels: int = DEFAULT_MAX_OUTPUT_PIXELS,
    max_output_side: int = DEFAULT_MAX_OUTPUT_SIDE,
) -> tuple[int, int]:
    """The output size of upscaling a ``width`` x ``height`` image, or ImageTooLarge.

    Pure arithmetic (here, beside the header, for that reason): the bot calls it with
    Telegram's photo size before charging.
    """
    if factor not in ALLOWED_FACTORS:
        raise ValueError(f"factor must be one of {ALLOWED_FACTORS}, not {factor!r}")
    if width < 1 or height < 1:
        raise ValueError("width and height must be positive")
    out_w, out_h = width * factor, height * factor
    if out_w * out_h > max_output_pixels or max(out_w, out_h) > max_output_side:
        raise ImageTooLarge(
            f"upscaling {width}x{height} by {factor} would make {out_w}x{out_h}, over the "
            f"limit of {max_output_pixels} pixels / {max_output_side} per side",
            width=out_w,
            height=out_h,
            limit_pixels=max_output_pixels,
        )
    return out_w, out_h
