"""📝 Add text: a caption drawn with a bundled Cyrillic-capable font.

Pillow's built-in bitmap font has no Cyrillic (it draws empty boxes), so the
package ships DejaVu Sans Bold (``fonts/``, licence in ``fonts/LICENSE``).
Characters the font has no glyph for (e.g. CJK, most emoji) are left out instead of
being drawn as boxes, and the result says which (``params["missing"]``). Drawing them
would take a colour emoji font (Noto Color Emoji: ~10 MB, bitmaps at one size) — not
worth it for a caption tool.
"""

from __future__ import annotations

from typing import Literal

from PIL import Image, ImageDraw, ImageFont

from ._image import MediaResult, load_image, make_result
from .caption import (  # noqa: F401 - re-exported: the operation and its check
    FONT_PATH,
    MAX_TEXT_LENGTH,
    check_text,
    has_glyph,
    load_font,
    missing_glyphs,
)
from .errors import InvalidText

MAX_BLOCK_SHARE = 0.45  # the text block covers at most this share of the height
MIN_FONT_SIZE = 10
TINY_FONT_SIZE = 7  # a long text on a small picture, rather than cut off
MAX_MISSING_SHOWN = 10  # characters named in the result caption, at most

Position = Literal["top", "bottom", "center"]


def _break_word(word: str, font: ImageFont.FreeTypeFont, width: float) -> list[str]:
    pieces, current = [], ""
    for char in word:
        if current and font.getlength(current + char) > width:
            pieces.append(current)
            current = char
        else:
            current += char
    if current:
        pieces.append(current)
    return pieces


def wrap_text(text: str, font: ImageFont.FreeTypeFont, width: float) -> list[str]:
    """Greedy word wrap to ``width`` pixels; over-long words are broken."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        current = ""
        for word in paragraph.split(" "):
            if not word:
                continue
            candidate = f"{current} {word}" if current else word
            if font.getlength(candidate) <= width:
                current = candidate
                continue
            if current:
                lines.append(current)
            if font.getlength(word) <= width:
                current = word
            else:
                *full, current = _break_word(word, font, width)
                lines.extend(full)
        lines.append(current)
    return lines


def _layout(
    text: str, width: int, height: int
) -> tuple[ImageFont.FreeTypeFont, list[str], int, int, int]:
    """Pick the largest font size (from ~8% of the short side down) that fits the
    text into the width and into MAX_BLOCK_SHARE of the height.

    A long text on a small picture may need more: then sizes down to TINY_FONT_SIZE may
    fill the whole height. Text that fits even so is refused (InvalidText), never drawn
    with lines cut off at the edge."""
    size = max(MIN_FONT_SIZE, round(min(width, height) * 0.08))
    margin = max(4, round(min(width, height) * 0.04))
    share = MAX_BLOCK_SHARE
    widened = False
    while True:
        font = load_font(size)
        stroke = max(1, round(size / 14))
        usable = max(1, width - 2 * margin - 2 * stroke)
        lines = wrap_text(text, font, usable)
        ascent, descent = font.getmetrics()
        line_height = ascent + descent + 2 * stroke + round(size * 0.1)
        block = len(lines) * line_height
        if block <= height * share:
            return font, lines, stroke, line_height, margin
        if size > MIN_FONT_SIZE:
            size = max(MIN_FONT_SIZE, int(size * 0.85))
        elif not widened:
            share = max(MAX_BLOCK_SHARE, (height - 2 * margin) / height)
            widened = True
        elif size > TINY_FONT_SIZE:
            size -= 1
        else:
            raise InvalidText(
                f"{len(text)} characters do not fit on a {width}x{height} picture",
                reason="too-long",
                max_length=MAX_TEXT_LENGTH,
            )


def draw_text(img: Image.Image, text: str, position: Position = "bottom") -> Image.Image:
    """Draw already-checked ``text`` on a copy of ``img``."""
    if position not in ("top", "bottom", "center"):
        raise ValueError(f"position must be top, bottom or center, not {position!r}")
    out = img.copy()
    width, height = out.size
    font, lines, stroke, line_height, margin = _layout(text, width, height)
    block = len(lines) * line_height
    if position == "top":
        y = margin
    elif position == "center":
        y = (height - block) // 2
    else:
        y = height - margin - block
    draw = ImageDraw.Draw(out)
    for line in lines:
        line_width = font.getlength(line)
        x = (width - line_width) / 2
        draw.text(
            (x, y + stroke),
            line,
            font=font,
            fill=(255, 255, 255),
            stroke_width=stroke,
            stroke_fill=(0, 0, 0),
        )
        y += line_height
    return out


def add_text(data: bytes, text: str, *, position: Position = "bottom") -> MediaResult:
    """Write ``text`` on the photo: white with a black outline, centred, wrapped to the
    width, size relative to the image, at the top, centre or bottom."""
    cleaned = check_text(text)
    img = load_image(data)
    out = draw_text(img, cleaned, position)
    params: dict[str, str | int] = {"position": position, "length": len(cleaned)}
    missing = missing_glyphs(text)
    if missing:
        shown = " ".join(missing[:MAX_MISSING_SHOWN])
        params["missing"] = shown + (" …" if len(missing) > MAX_MISSING_SHOWN else "")
    return make_result(out, "text", params)
