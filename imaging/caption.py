"""The light half of 📝 add text: cleaning and checking a caption against the bundled font.

Pillow's font code only, no OpenCV or numpy: the bot checks a caption before the charge.
"""

from __future__ import annotations

import threading
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InvalidText
from .visible_text import is_invisible, is_visible, visibly_empty

if TYPE_CHECKING:
    from PIL import ImageFont

FONT_PATH = Path(__file__).resolve().parent / "fonts" / "DejaVuSans-Bold.ttf"
MAX_TEXT_LENGTH = 200
_PROBE_SIZE = 32
_NOTDEF_PROBE = "\U0010fffd"  # a private-use code point no font we ship covers


def load_font(size: int) -> ImageFont.FreeTypeFont:
    """The bundled font at ``size`` px, cached per thread (a FreeType face is not meant
    to be used from several threads at once)."""
    return _thread_font(size, threading.get_ident())


@lru_cache(maxsize=128)
def _thread_font(size: int, thread_id: int) -> ImageFont.FreeTypeFont:
    # Pillow is imported here, not above: the bot process imports this module for its
    # checks and loads Pillow (~4 MB) only when it first checks a text.
    from PIL import ImageFont

    return ImageFont.truetype(str(FONT_PATH), size)


@lru_cache(maxsize=1)
def _notdef_signature() -> tuple[tuple[int, int], bytes]:
    mask = load_font(_PROBE_SIZE).getmask(_NOTDEF_PROBE)
    return mask.size, bytes(mask)


@lru_cache(maxsize=4096)
def has_glyph(char: str) -> bool:
    """Whether the bundled font draws ``char`` as itself rather than the missing-glyph box."""
    if char.isspace():
        return True
    mask = load_font(_PROBE_SIZE).getmask(char)
    return (mask.size, bytes(mask)) != _notdef_signature()


def check_text(text: str) -> str:
    """Clean a caption (NFC, control characters and glyph-less characters dropped,
    spaces collapsed) and check its length; the bot calls it before queueing.

    Raises InvalidText (reason ``"empty"`` or ``"too-long"``).
    """
    if not isinstance(text, str):
        raise TypeError("text must be a string")
    if len(text) > MAX_TEXT_LENGTH * 2:  # refuse absurd input before any work
        raise InvalidText(
            f"text is longer than {MAX_TEXT_LENGTH} characters",
            reason="too-long",
            max_length=MAX_TEXT_LENGTH,
        )
    text = unicodedata.normalize("NFC", text)
    kept = []
    for char in text:
        if char == "\n" or (
            unicodedata.category(char)[0] != "C" and not is_invisible(char) and has_glyph(char)
        ):
            kept.append(char)
    lines = [" ".join(line.split()) for line in "".join(kept).split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    cleaned = "\n".join(lines)
    if visibly_empty(cleaned):  # e.g. only the blank Braille pattern, which the font has
        raise InvalidText("text is empty", reason="empty", max_length=MAX_TEXT_LENGTH)
    if len(cleaned) > MAX_TEXT_LENGTH:
        raise InvalidText(
            f"text is longer than {MAX_TEXT_LENGTH} characters",
            reason="too-long",
            max_length=MAX_TEXT_LENGTH,
        )
    return cleaned


def missing_glyphs(text: str) -> list[str]:
    """The visible characters of ``text`` the font cannot draw (each once, in order): what
    :func:`check_text` leaves out without a word."""
    seen: dict[str, None] = {}
    for char in unicodedata.normalize("NFC", text):
        if is_visible(char) and not has_glyph(char):
            seen.setdefault(char)
    return list(seen)
