"""Fixtures of the media tests: real photos from tests/fixtures (see its README)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def decode(data: bytes) -> np.ndarray:
    """Bytes of an image -> RGB uint8 array (as a viewer shows it)."""
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


def to_jpeg(arr: np.ndarray | Image.Image, quality: int = 92) -> bytes:
    img = arr if isinstance(arr, Image.Image) else Image.fromarray(arr)
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture(scope="session")
def astronaut() -> bytes:
    """512x512 JPEG, one frontal face (Eileen Collins, NASA, public domain)."""
    return fixture_bytes("astronaut.jpg")


@pytest.fixture(scope="session")
def hopper() -> bytes:
    """512x600 JPEG, one frontal face (Grace Hopper, US Navy, public domain)."""
    return fixture_bytes("hopper.jpg")


@pytest.fixture(scope="session")
def coffee() -> bytes:
    """600x400 JPEG, no face (CC0)."""
    return fixture_bytes("coffee.jpg")


@pytest.fixture(scope="session")
def chelsea_png() -> bytes:
    """320x213 PNG of a cat (CC0): no human face."""
    return fixture_bytes("chelsea.png")
