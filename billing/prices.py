"""Operation types and their prices: the one place a price comes from."""

from __future__ import annotations

import enum

from billing.errors import UnknownOperationType
from billing.settings import Settings


class OperationType(enum.StrEnum):
    GENERATE = "generate"
    EDIT = "edit"
    MERGE = "merge"
    FACE_SWAP = "face_swap"
    RETOUCH = "retouch"
    UPSCALE = "upscale"
    ADD_TEXT = "add_text"


FREE_TYPES = frozenset({OperationType.ADD_TEXT})


def operation_type(value: object) -> OperationType:
    try:
        return OperationType(str(value))
    except ValueError:
        raise UnknownOperationType(value) from None


def price_for(op_type: OperationType | str, settings: Settings) -> int:
    """The price of one operation of this type, in kopecks (0 for free types)."""
    kind = operation_type(op_type)
    if kind in FREE_TYPES:
        return 0
    return settings.price_kopecks


def format_rub(kopecks: int) -> str:
    """Rubles for the screen: 1000 → '10', 1050 → '10,50', -500 → '−5'."""
    sign = "−" if kopecks < 0 else ""
    rub, kop = divmod(abs(kopecks), 100)
    whole = f"{rub:,}".replace(",", "\u202f")
    return f"{sign}{whole},{kop:02d}" if kop else f"{sign}{whole}"
