"""Bounds for the numbers that come from outside — buttons, commands, the operator CLI,
notifications — checked before they meet the database.

The columns are 64-bit (ids, kopecks) and 32-bit (free operations): a number past them made
the driver raise (a traceback, a generic error to the user) or, on SQLite, turned the sum into
a float. Each front parses with these functions and answers a number they refuse in plain
words; the billing service checks the same bounds again, so no caller can skip them.
"""

from __future__ import annotations

import re

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
INT32_MAX = 2**31 - 1

# The largest amount setting (TOPUP_MAX_RUB, ADMIN_ADJUST_MAX_RUB) in rubles: a billion rubles
# is 10^11 kopecks, so even millions of such amounts added up stay far inside int64.
MAX_SETTING_RUB = 10**9
# Free operations one adjustment may add or take.
MAX_FREE_ADJUST = 10_000

_DIGITS = re.compile(r"[0-9]+")  # ASCII only: "١٢٣" and "１２３" are not numbers here
# Rubles: ASCII digits, optionally "." or "," and more digits. No sign (the caller decides),
# no exponent ("1e17"), no NaN or inf, no spaces, no "_" grouping.
_RUBLES = re.compile(r"([0-9]+)(?:[.,]([0-9]+))?")
_MAX_RUBLE_DIGITS = 15  # 10^15 ₽ = 10^17 kopecks: anything longer is out of range anyway
_MAX_TEXT = 64  # characters of a number worth looking at


class BadNumber(ValueError):
    """A number refused; ``reason`` is "not_a_number", "decimals" or "out_of_range"."""

    def __init__(self, reason: str, value: object) -> None:
        super().__init__(f"{reason}: {str(value)[:_MAX_TEXT]!r}")
        self.reason = reason
        self.value = value


def fits_int64(value: object) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and (INT64_MIN <= value <= INT64_MAX)
    )


def parse_id(value: object) -> int | None:
    """A database row id or a Telegram user id: 1 … 2^63-1, from an int or ASCII digits in
    their plain form (no sign, spaces, "_" or leading zeros). None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif (
        isinstance(value, str)
        and len(value) <= 19
        and _DIGITS.fullmatch(value)
        and value[0] != "0"
    ):
        number = int(value)
    else:
        return None
    return number if 1 <= number <= INT64_MAX else None


def parse_count(value: str, *, limit: int) -> int:
    """A whole number of things (free operations) with an optional sign, |n| <= limit."""
    text = value.strip()
    sign = -1 if text[:1] == "-" else 1
    digits = text[1:] if text[:1] in "+-" else text
    if not _DIGITS.fullmatch(digits):
        raise BadNumber("not_a_number", value)
    if len(digits) > len(str(limit)) or int(digits) > limit:
        raise BadNumber("out_of_range", value)
    return sign * int(digits)


def parse_kopecks(value: str, *, limit: int) -> int:
    """Unsigned rubles with at most two decimals ("50", "9.90", "9,9", "1.500") in kopecks,
    at most ``limit`` kopecks. Raises :class:`BadNumber`."""
    if len(value) > _MAX_TEXT:  # a number this long is out of range; anything else is no number
        raise BadNumber("out_of_range" if _RUBLES.fullmatch(value) else "not_a_number", value)
    match = _RUBLES.fullmatch(value)
    if match is None:
        raise BadNumber("not_a_number", value)
    whole, fraction = match.group(1), (match.group(2) or "").rstrip("0")
    if len(fraction) > 2:
        raise BadNumber("decimals", value)
    whole = whole.lstrip("0") or "0"
    if len(whole) > _MAX_RUBLE_DIGITS:
        raise BadNumber("out_of_range", value)
    kopecks = int(whole) * 100 + int(fraction.ljust(2, "0"))
    if kopecks > limit:
        raise BadNumber("out_of_range", value)
    return kopecks


def parse_signed_kopecks(value: str, *, limit: int) -> int:
    """:func:`parse_kopecks` with an optional leading "-" or "+": |amount| <= ``limit``."""
    text = value.strip()
    if text[:1] in ("-", "−"):  # ASCII hyphen and the Unicode minus people paste
        return -parse_kopecks(text[1:], limit=limit)
    if text[:1] == "+":
        return parse_kopecks(text[1:], limit=limit)
    return parse_kopecks(text, limit=limit)
