"""📝 Characters the bundled font cannot draw (most emoji, CJK) are left out of the picture,
and the result caption says which — they were dropped without a word."""

from __future__ import annotations

from imaging.text import MAX_MISSING_SHOWN, add_text, missing_glyphs
from workers.messages import what_was_done


def test_the_caption_names_the_characters_left_out(coffee: bytes) -> None:
    result = add_text(coffee, "Ура 🎉🔥 день 🎉 中")
    assert result.params["missing"] == "🎉 🔥 中"
    ru = what_was_done(result, "ru")
    assert ru == "📝 Текст добавлен.\n⚠️ Этих символов нет в шрифте, на картинке их нет: 🎉 🔥 中"
    assert "left out: 🎉 🔥 中" in what_was_done(result, "en")


def test_a_text_the_font_draws_whole_says_nothing_more(coffee: bytes) -> None:
    result = add_text(coffee, "Привет, мир! 😀")  # DejaVu draws this emoticon
    assert "missing" not in result.params
    assert what_was_done(result, "ru") == "📝 Текст добавлен."


def test_invisible_characters_and_joiners_are_not_named() -> None:
    # The zero-width joiner and the variation selector draw nothing on their own.
    assert missing_glyphs("a\u200d\ufe0fb\u3164") == []
    assert missing_glyphs("👍🏽") == ["👍", "🏽"]


def test_a_long_list_is_cut_short(coffee: bytes) -> None:
    emoji = "".join(chr(0x1F680 + i) for i in range(MAX_MISSING_SHOWN + 5))
    result = add_text(coffee, "Поехали " + emoji)
    shown = str(result.params["missing"])
    assert shown.endswith(" …") and len(shown.split()) == MAX_MISSING_SHOWN + 1
