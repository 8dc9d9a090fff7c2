"""📝 add_text: Cyrillic is drawn with real glyphs, wrapped, outlined, bounded."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from imaging.caption import MAX_TEXT_LENGTH, check_text
from imaging.errors import InvalidText
from imaging.text import FONT_PATH, add_text, draw_text, has_glyph, load_font, wrap_text

from .conftest import decode, to_jpeg


def _render(char: str) -> np.ndarray:
    img = Image.new("L", (80, 80), 0)
    ImageDraw.Draw(img).text((10, 5), char, font=load_font(48), fill=255)
    return np.asarray(img)


def _missing_box() -> np.ndarray:
    return _render("\U0010fffd")  # no glyph: the font's .notdef box


def test_bundled_font_is_there_with_its_licence() -> None:
    assert FONT_PATH.is_file() and FONT_PATH.stat().st_size > 100_000
    assert (FONT_PATH.parent / "LICENSE").is_file()


def test_different_cyrillic_letters_render_differently() -> None:
    zhe, sha = _render("Ж"), _render("Ш")
    box = _missing_box()
    assert zhe.sum() > 0 and sha.sum() > 0
    assert not np.array_equal(zhe, sha)
    assert not np.array_equal(zhe, box)
    assert not np.array_equal(sha, box)
    assert has_glyph("Ж") and has_glyph("ё") and not has_glyph("\u4e2d")


def test_pillows_default_font_would_fail_this_check() -> None:
    """The trap: Pillow's built-in font draws every Cyrillic letter as the same box."""
    font = ImageFont.load_default(size=24)

    def render(char: str) -> np.ndarray:
        img = Image.new("L", (40, 40), 0)
        ImageDraw.Draw(img).text((5, 5), char, font=font, fill=255)
        return np.asarray(img)

    assert np.array_equal(render("Ж"), render("Ш"))


def test_add_text_changes_the_image_where_the_text_goes(coffee: bytes) -> None:
    before = decode(coffee).astype(np.int32)
    result = add_text(coffee, "Привет, мир!")
    after = decode(result.data).astype(np.int32)
    assert after.shape == before.shape
    diff = np.abs(after - before).mean(axis=2)
    assert diff[250:].mean() > 5  # bottom band has the caption
    assert diff[:120].mean() < 2  # the top stays
    # White letters and a black outline are both there.
    changed = diff > 40
    assert (after[changed].min(axis=1) > 220).any()
    assert (after[changed].max(axis=1) < 40).any()
    assert result.params["position"] == "bottom"


def test_different_texts_give_different_pictures(coffee: bytes) -> None:
    zhe = decode(add_text(coffee, "ЖЖЖ").data).astype(np.int32)
    sha = decode(add_text(coffee, "ШШШ").data).astype(np.int32)
    assert np.abs(zhe - sha).mean() > 0.5


def test_position_top(coffee: bytes) -> None:
    before = decode(coffee).astype(np.int32)
    after = decode(add_text(coffee, "Сверху", position="top").data).astype(np.int32)
    diff = np.abs(after - before).mean(axis=2)
    assert diff[:120].mean() > diff[280:].mean() + 3


def test_long_text_wraps_inside_the_width() -> None:
    font = load_font(30)
    lines = wrap_text("очень длинная подпись " * 6, font, 300)
    assert len(lines) > 3
    assert all(font.getlength(line) <= 300 for line in lines)
    broken = wrap_text("Ж" * 60, font, 200)  # a single over-long word is broken
    assert len(broken) > 1 and "".join(broken) == "Ж" * 60


def test_text_stays_inside_a_small_image() -> None:
    img = Image.new("RGB", (200, 120), (0, 0, 255))
    out = np.asarray(draw_text(img, "Длинный текст " * 12, "bottom")).astype(np.int32)
    assert (np.abs(out - np.asarray(img)).sum(axis=2) > 0).any()
    # Nothing drawn in the outermost columns: wrapped, not cut off at the edge.
    assert (out[:, :2] == [0, 0, 255]).all()
    assert (out[:, -2:] == [0, 0, 255]).all()


@pytest.mark.parametrize("position", ["top", "bottom", "center"])
def test_a_long_text_on_a_thumbnail_is_drawn_whole_or_refused(position: str) -> None:
    """174 characters on 160x120: smaller letters over more of the picture, every line
    inside it (before, the top lines were drawn above the picture and lost)."""
    img = Image.new("RGB", (160, 120), (0, 0, 255))
    out = np.asarray(draw_text(img, ("Длинный текст " * 13)[:174], position)).astype(np.int32)
    drawn = np.abs(out - np.asarray(img)).sum(axis=2) > 0
    rows = np.flatnonzero(drawn.any(axis=1))
    assert rows.size and rows[0] >= 2 and rows[-1] <= 117  # clear of both edges
    with pytest.raises(InvalidText):
        draw_text(Image.new("RGB", (64, 48)), "Длинный текст " * 14, position)


@pytest.mark.parametrize("size", [(200, 12), (300, 14), (2000, 8)])
def test_a_strip_too_short_for_letters_is_refused(
    size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shorter than two margins: no height to widen into (this looped forever once; the
    layout's tries are counted, so a loop fails the test instead of hanging it)."""
    from imaging import text

    tries = 0
    real = text.load_font

    def counted(size: int):  # type: ignore[no-untyped-def]
        nonlocal tries
        tries += 1
        assert tries < 100, "the layout does not end"
        return real(size)

    monkeypatch.setattr(text, "load_font", counted)
    with pytest.raises(InvalidText):
        draw_text(Image.new("RGB", size), "Привет, мир! " * 5)


def test_text_is_checked() -> None:
    with pytest.raises(InvalidText) as info:
        check_text("   \n  ")
    assert info.value.reason == "empty"
    with pytest.raises(InvalidText) as info:
        check_text("я" * (MAX_TEXT_LENGTH + 1))
    assert info.value.reason == "too-long"
    assert check_text("  Привет \x00 мир 中  ") == "Привет мир"
    assert check_text("строка 1\n\nстрока 2") == "строка 1\n\nстрока 2"


def test_add_text_on_a_png_input(chelsea_png: bytes) -> None:
    result = add_text(chelsea_png, "Кот", position="center")
    assert (result.width, result.height) == (320, 213)


def test_add_text_refuses_empty_before_decoding() -> None:
    with pytest.raises(InvalidText):
        add_text(to_jpeg(np.zeros((10, 10, 3), np.uint8)), "")
