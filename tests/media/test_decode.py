"""Inputs: what is accepted (formats, EXIF orientation, alpha) and what is refused."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from imaging._image import load_image
from imaging.edit import apply_edit
from imaging.errors import ImageTooLarge, InvalidImage, MediaError
from imaging.header import MAX_INPUT_PIXELS, probe_image
from imaging.instruction import Step
from imaging.upscale import upscale

from .conftest import decode


def _png_with_header_size(width: int, height: int) -> bytes:
    """A tiny real PNG whose IHDR announces width x height (a decompression bomb's header)."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def test_plain_text_is_invalid_image() -> None:
    with pytest.raises(InvalidImage) as info:
        load_image(b"Hello, this is a text file, not a photo.\n" * 10)
    assert isinstance(info.value, MediaError)
    assert info.value.code == "invalid-image"


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00" * 1000, bytes(range(256)) * 4, b"\xff\xd8\xff"],
    ids=["empty", "zeros", "byte-ramp", "jpeg-magic-only"],
)
def test_garbage_bytes_are_invalid_image(data: bytes) -> None:
    with pytest.raises(InvalidImage):
        load_image(data)


def test_truncated_jpeg_is_invalid_image(astronaut: bytes) -> None:
    with pytest.raises(InvalidImage):
        load_image(astronaut[: len(astronaut) // 2])


def test_invalid_image_names_the_photo(astronaut: bytes) -> None:
    from imaging.merge import merge

    with pytest.raises(InvalidImage) as info:
        merge(astronaut, b"not an image")
    assert info.value.which == "b"


def test_decompression_bomb_header_is_refused_before_decoding() -> None:
    bomb = _png_with_header_size(40_000, 40_000)  # 1.6 gigapixels announced, ~100 bytes
    assert len(bomb) < 200
    with pytest.raises(ImageTooLarge):
        load_image(bomb)
    with pytest.raises(ImageTooLarge):
        probe_image(bomb)


def test_header_over_our_pixel_limit_is_refused_with_its_size() -> None:
    side = int((MAX_INPUT_PIXELS + 1_000_000) ** 0.5)
    data = _png_with_header_size(side, side)
    with pytest.raises(ImageTooLarge) as info:
        load_image(data)
    assert (info.value.width, info.value.height) == (side, side)
    assert info.value.limit_pixels == MAX_INPUT_PIXELS


def test_not_bytes_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        load_image("astronaut.jpg")  # type: ignore[arg-type]


def test_png_webp_and_cmyk_jpeg_are_read(chelsea_png: bytes) -> None:
    img = load_image(chelsea_png)
    assert img.mode == "RGB" and img.size == (320, 213)

    webp = io.BytesIO()
    img.save(webp, "WEBP", quality=80)
    assert load_image(webp.getvalue()).size == (320, 213)

    cmyk = io.BytesIO()
    img.convert("CMYK").save(cmyk, "JPEG")
    out = load_image(cmyk.getvalue())
    assert out.mode == "RGB"
    # The cat is mostly brown: red above blue, as in the original.
    arr = np.asarray(out, dtype=np.float32)
    assert arr[..., 0].mean() > arr[..., 2].mean()


def test_exif_orientation_is_applied() -> None:
    stored = Image.new("RGB", (40, 20), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 20, 20))  # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=95, exif=exif)
    data = buf.getvalue()

    info = probe_image(data)
    assert (info.width, info.height) == (20, 40)
    shown = np.asarray(load_image(data), dtype=np.int32)
    assert shown.shape == (40, 20, 3)
    assert shown[5, 10, 0] > 200 and shown[5, 10, 2] < 60  # top is red
    assert shown[35, 10, 2] > 200 and shown[35, 10, 0] < 60  # bottom is blue

    result = apply_edit(data, [Step("brightness", 10)])
    assert (result.width, result.height) == (20, 40)
    assert decode(result.data)[5, 10, 0] > 200


def test_transparent_png_lands_on_white() -> None:
    buf = io.BytesIO()
    Image.new("RGBA", (30, 30), (0, 0, 0, 0)).save(buf, "PNG")
    arr = np.asarray(load_image(buf.getvalue()))
    assert arr.min() >= 250


def test_huge_input_is_reduced_to_the_working_size() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (8200, 1000), (120, 130, 140)).save(buf, "JPEG", quality=70)
    img = load_image(buf.getvalue())
    assert max(img.size) == 4096
    assert abs(img.size[1] - round(1000 * 4096 / 8200)) <= 1


def test_upscale_of_garbage_is_invalid_image() -> None:
    with pytest.raises(InvalidImage):
        upscale(b"GIF89a but not really")
