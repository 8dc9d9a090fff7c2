"""Whether a text a user sent shows anything at all: one rule for every text input (the 🎨
prompt, the ✏️ instruction, the 📝 caption and text).

Telegram lets a message consist of characters that draw nothing: format characters
(zero-width space U+200B, word joiner U+2060, BOM U+FEFF, bidi marks — Unicode category Cf),
the Hangul fillers (U+115F, U+1160, U+3164 "ㅤ", U+FFA0: letters by category, blank by
design, the usual way to send an "empty" message), the blank Braille pattern U+2800,
variation selectors and combining marks with nothing to sit on. Such a text is empty:
it is refused like an empty one, before anything is charged.

Only the standard library: every process (the bot included) imports this.
"""

from __future__ import annotations

import unicodedata

# Blank by design though their category says letter or symbol.
BLANK_CHARACTERS = frozenset(
    {
        "\u115f",  # HANGUL CHOSEONG FILLER
        "\u1160",  # HANGUL JUNGSEONG FILLER
        "\u3164",  # HANGUL FILLER
        "\uffa0",  # HALFWIDTH HANGUL FILLER
        "\u2800",  # BRAILLE PATTERN BLANK
        "\u17b4",  # KHMER VOWEL INHERENT AQ
        "\u17b5",  # KHMER VOWEL INHERENT AA
    }
)
# Letters, numbers, punctuation and symbols show something; marks (M*) only on a base
# character, separators (Z*) and others (C*: control, format, private use, unassigned)
# never on their own.
_VISIBLE_CATEGORIES = frozenset("LNPS")


def is_visible(char: str) -> bool:
    """Whether ``char`` (one code point) draws something by itself."""
    return char not in BLANK_CHARACTERS and unicodedata.category(char)[0] in _VISIBLE_CATEGORIES


def is_invisible(char: str) -> bool:
    """A character that is neither visible nor ordinary white space (a tab, a space and a
    line break separate words; a zero-width space or a filler only pretends to be text)."""
    return not is_visible(char) and not char.isspace() and unicodedata.category(char)[0] != "M"


def visibly_empty(text: str | None) -> bool:
    """True for None, "", white space, and any text without one visible character."""
    return not text or not any(is_visible(char) for char in text)


def without_invisible(text: str) -> str:
    """``text`` without its format characters and blank fillers (marks and white space
    stay: they belong to the visible characters around them)."""
    return "".join(char for char in text if not is_invisible(char))
