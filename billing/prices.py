"""Operation types and their prices: the one place a price comes from.

The money half of the operation catalogue (the other half, what an operation takes and how
it is shown, is :mod:`jobqueue.catalogue`; billing imports nothing of ours). A price is a
number of units, one unit being ``PRICE_PER_OPERATION``; 0 units is a free type: recorded
like any operation, it uses no free operation and no money.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from billing.errors import UnknownOperationType
from billing.settings import Settings


@dataclass(frozen=True)
class Price:
    units: int = 1  # how many PRICE_PER_OPERATION one operation costs; 0: free

    def __post_init__(self) -> None:
        if self.units < 0:
            raise ValueError("a price has no negative units")


# Every operation type, in menu order. Adding an operation starts with a line here.
PRICES: dict[str, Price] = {
    "generate": Price(),
    "edit": Price(),
    "merge": Price(),
    "face_swap": Price(),
    "retouch": Price(),
    "upscale": Price(),
    "add_text": Price(units=0),
}


class OperationType(str):
    """The name of a known operation type (a key of :data:`PRICES`), as the operations
    table stores it. A ``str``: the table is open (a new entry needs no new class), and
    ``OperationType("nope")`` raises ``ValueError`` like an enum would."""

    __slots__ = ()

    GENERATE: ClassVar[OperationType]
    EDIT: ClassVar[OperationType]
    MERGE: ClassVar[OperationType]
    FACE_SWAP: ClassVar[OperationType]
    RETOUCH: ClassVar[OperationType]
    UPSCALE: ClassVar[OperationType]
    ADD_TEXT: ClassVar[OperationType]

    def __new__(cls, value: object) -> OperationType:
        name = str(value)
        if name not in PRICES:
            raise ValueError(f"unknown operation type {name!r}")
        return super().__new__(cls, name)

    @property
    def value(self) -> str:
        return str.__str__(self)


OperationType.GENERATE = OperationType("generate")
OperationType.EDIT = OperationType("edit")
OperationType.MERGE = OperationType("merge")
OperationType.FACE_SWAP = OperationType("face_swap")
OperationType.RETOUCH = OperationType("retouch")
OperationType.UPSCALE = OperationType("upscale")
OperationType.ADD_TEXT = OperationType("add_text")


def operation_type(value: object) -> OperationType:
    try:
        return OperationType(value)
    except ValueError:
        raise UnknownOperationType(value) from None


def operation_types() -> tuple[OperationType, ...]:
    """Every known type, in menu order."""
    return tuple(OperationType(name) for name in PRICES)


def units_of(
    op_type: OperationType | str, settings: Settings | None = None, set_units: int | None = None
) -> int:
    """The units one operation of this type costs — the one rule, wherever a price is shown
    or charged: the model catalogue's price when the operator set one (``set_units``, the
    ``operation_models.units`` of the type, read by ``billing.ai_models``), else the
    operator's OPERATION_UNITS for it (seed 003's "generation 2" is
    ``OPERATION_UNITS=generate=2``), else the :data:`PRICES` line. Without ``settings``:
    no OPERATION_UNITS."""
    kind = operation_type(op_type)
    if set_units is not None:
        return set_units
    if settings is not None:
        units = settings.OPERATION_UNITS.get(kind.value)
        if units is not None:
            return units
    return PRICES[kind].units


def is_free(
    op_type: OperationType | str, settings: Settings | None = None, set_units: int | None = None
) -> bool:
    return units_of(op_type, settings, set_units) == 0


def price_for(
    op_type: OperationType | str, settings: Settings, set_units: int | None = None
) -> int:
    """The full price of one operation of this type, in kopecks (0 for free types): its units
    times PRICE_PER_OPERATION, before any plan's discount."""
    return units_of(op_type, settings, set_units) * settings.price_kopecks


def discounted(kopecks: int, discount_percent: int) -> int:
    """``kopecks`` less ``discount_percent`` %, rounded to the kopeck half up."""
    return (kopecks * (100 - discount_percent) + 50) // 100


def format_rub_kopecks(kopecks: int, *, group: str = "\u202f") -> str:
    """Rubles with their kopecks always, for figures in columns: 1000 → '10,00',
    -123456 → '−1 234,56' (``group`` between thousands: a plain space in a monospace table,
    where a narrow one may not be as wide as a digit)."""
    sign = "−" if kopecks < 0 else ""
    rub, kop = divmod(abs(kopecks), 100)
    return f"{sign}{rub:,}".replace(",", group) + f",{kop:02d}"


def format_rub(kopecks: int) -> str:
    """Rubles for the screen: 1000 → '10', 1050 → '10,50', -500 → '−5'."""
    sign = "−" if kopecks < 0 else ""
    rub, kop = divmod(abs(kopecks), 100)
    whole = f"{rub:,}".replace(",", "\u202f")
    return f"{sign}{whole},{kop:02d}" if kop else f"{sign}{whole}"
