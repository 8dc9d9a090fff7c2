"""The operation catalogue: what each operation type takes and how it is shown.

One entry per type, read by every process: the bot builds its modes, menu buttons, help,
pre-charge checks and its one handler per input kind from it; the job checks the bytes it
downloaded against the same minimum; the worker's runner table (``workers.operations``)
must have one runner per entry. The price is the other half of an entry, in
``billing.prices.PRICES`` (billing imports nothing of ours); which model runs a type, its
price in units as the operator set it and whether it is offered are the model catalogue's
(``billing.ai_models``, a table). Light: the bot reads it
without the image libraries.

Adding an operation: a line in ``billing.prices.PRICES``, an :class:`Entry` here, its
runner in ``workers.operations`` (and its imaging code), its texts (:meth:`Entry.text_keys`)
in ``texts/locales/ru`` and ``en``. README, "Add an operation".
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from billing.prices import OperationType


class Inputs(enum.StrEnum):
    """What the user sends; the bot has one assessment (and one handler path) per kind."""

    TEXT = "text"  # a text, no photo
    PHOTO = "photo"  # one photo
    PAIR = "pair"  # two photos, in the order sent (an album works)
    PHOTO_AND_TEXT = "photo_and_text"  # a photo and a text: its caption, or the next message
    # Two photos and a text: a caption of either, or the next message.
    PAIR_AND_TEXT = "pair_and_text"
    # Two to ``Entry.max_photos`` photos, one by one or as an album, then "✅ Готово" (or the
    # last one of the most it takes).
    SEVERAL = "several"
    # The same and a sentence on how to combine them (a multi-image model): a caption, or a
    # message after the photos (which also says they are all there).
    SEVERAL_AND_TEXT = "several_and_text"


# The fewest photos each kind takes (PAIR: exactly two; SEVERAL: up to Entry.max_photos).
PHOTOS = {
    Inputs.TEXT: 0,
    Inputs.PHOTO: 1,
    Inputs.PAIR: 2,
    Inputs.PHOTO_AND_TEXT: 1,
    Inputs.PAIR_AND_TEXT: 2,
    Inputs.SEVERAL: 2,
    Inputs.SEVERAL_AND_TEXT: 2,
}


@dataclass(frozen=True)
class Entry:
    type: OperationType
    inputs: Inputs
    # The shortest side of each photo, in pixels (checked by the bot before the charge, by
    # the job on the bytes).
    min_side: int = 0
    # The text check, by name (``bot.inputs.TEXT_CHECKS``): how the text of a TEXT or
    # PHOTO_AND_TEXT entry is checked and cleaned before the charge.
    text_check: str | None = None
    # More checks of each photo before the charge, by name (``bot.inputs.PHOTO_CHECKS``).
    photo_checks: tuple[str, ...] = ()
    # The answer asking for the text (TEXT and PHOTO_AND_TEXT entries).
    ask_text: str | None = None
    # When a fal model runs it (billing.ai_models: the model catalogue decides, with
    # FAL_KEY): its own text check and ask, e.g. free words for an instruction-following
    # editor where the local code takes a list of commands.
    fal_text_check: str | None = None
    fal_ask_text: str | None = None
    fal_inputs: Inputs | None = None  # what the fal model takes, when other than ``inputs``
    # The result is also sent as a file (Telegram recompresses photos).
    lossless: bool = False
    # The most photos a SEVERAL entry takes (None: as many as ``photos``).
    max_photos: int | None = None

    def __post_init__(self) -> None:
        if self.takes_text and not self.ask_text:
            raise ValueError(f"{self.type}: an entry that takes text needs ask_text")
        if self.photos == 0 and (self.min_side or self.photo_checks):
            raise ValueError(f"{self.type}: photo limits on an entry that takes no photo")

    @property
    def photos(self) -> int:
        """How many photos the operation uses (at least)."""
        return PHOTOS[self.inputs]

    @property
    def most_photos(self) -> int:
        """How many photos the operation uses at most."""
        return max(self.photos, self.max_photos or 0)

    @property
    def takes_text(self) -> bool:
        return self.inputs in (
            Inputs.TEXT,
            Inputs.PHOTO_AND_TEXT,
            Inputs.PAIR_AND_TEXT,
            Inputs.SEVERAL_AND_TEXT,
        )

    def text_keys(self) -> tuple[str, ...]:
        """The texts an entry needs in every language: its menu button, its line in /help,
        what its mode asks for, the "queued" line (and the ask for its text)."""
        name = self.type.value
        keys = (f"bot-btn-{name}", f"bot-help-{name}", f"bot-mode-{name}", f"bot-op-queued-{name}")
        keys += (self.ask_text,) if self.ask_text else ()
        return keys + ((self.fal_ask_text,) if self.fal_ask_text else ())

    def for_backend(self, backend: str) -> Entry:
        """The entry as the mode takes input while ``backend`` runs it."""
        if backend != "fal":
            return self
        return replace(
            self,
            inputs=self.fal_inputs or self.inputs,
            text_check=self.text_check_for(backend),
            ask_text=self.ask_text_for(backend),
        )

    def text_check_for(self, backend: str) -> str | None:
        return self.fal_text_check if backend == "fal" and self.fal_text_check else self.text_check

    def ask_text_for(self, backend: str) -> str | None:
        return self.fal_ask_text if backend == "fal" and self.fal_ask_text else self.ask_text


# In menu order (the order of billing.prices.PRICES).
CATALOGUE: dict[str, Entry] = {
    entry.type: entry
    for entry in (
        Entry(
            OperationType.GENERATE,
            Inputs.TEXT,
            text_check="prompt",
            ask_text="bot-generate-need-text",
        ),
        # Every command works at any size, and cropping, turning or recolouring a small
        # sticker is a fair request; under 32 px the result is an icon nobody can judge.
        Entry(
            OperationType.EDIT,
            Inputs.PHOTO_AND_TEXT,
            min_side=32,
            text_check="instruction",
            ask_text="bot-edit-need-instruction",
            fal_text_check="prompt",
            fal_ask_text="bot-edit-need-words",
        ),
        # The merged picture takes the smallest of the heights: one tiny photo shrinks
        # all to a strip (a 1 px tall photo made a 1 px tall result). A multi-image model
        # composes one scene of 2-4 photos and needs a sentence on how.
        Entry(
            OperationType.MERGE,
            Inputs.SEVERAL,
            min_side=64,
            max_photos=4,
            fal_inputs=Inputs.SEVERAL_AND_TEXT,
            fal_text_check="prompt",
            fal_ask_text="bot-merge-need-words",
        ),
        # A face must be found in both: the detector's smallest face is 24 px and at least
        # 1/12 of the short side (imaging.faceswap), with room around it.
        Entry(OperationType.FACE_SWAP, Inputs.PAIR, min_side=64),
        # A portrait retouch needs a face, found as for the face swap.
        Entry(OperationType.RETOUCH, Inputs.PHOTO, min_side=64),
        # Resampling invents no detail: twice an icon is a bigger icon (a 1×1 photo was
        # "upscaled" to 2×2 and charged).
        Entry(
            OperationType.UPSCALE,
            Inputs.PHOTO,
            min_side=64,
            photo_checks=("upscale-fits",),
            lossless=True,
        ),
        # The smallest font is 7 px plus its outline and margins: under 64 px not even one
        # short word fits readably.
        Entry(
            OperationType.ADD_TEXT,
            Inputs.PHOTO_AND_TEXT,
            min_side=64,
            text_check="caption",
            ask_text="bot-text-need-text",
        ),
    )
}


def entry(op_type: OperationType | str) -> Entry:
    """The entry of a type (``KeyError`` for a type the catalogue does not have)."""
    return CATALOGUE[str(op_type)]


def entries() -> tuple[Entry, ...]:
    return tuple(CATALOGUE.values())


def min_side(op_type: OperationType | str) -> int:
    return entry(op_type).min_side


def too_small(op_type: OperationType | str, width: int, height: int) -> bool:
    """Whether a ``width`` × ``height`` photo is under the operation's minimum."""
    return min(width, height) < min_side(op_type)
