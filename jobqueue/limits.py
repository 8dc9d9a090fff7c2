"""What each operation type takes: how many photos, and how small a photo may be.

One table, read by the bot (to refuse before the charge, with the minimum in the answer) and
by the job (the same check on the bytes it downloaded). Imports nothing heavy: the bot reads
it without the image libraries.
"""

from __future__ import annotations

from dataclasses import dataclass

from billing.prices import OperationType


@dataclass(frozen=True)
class InputLimits:
    photos: int  # how many photos the operation uses
    min_side: int = 0  # the shortest side of each photo, in pixels (0: no photo)


LIMITS: dict[OperationType, InputLimits] = {
    OperationType.GENERATE: InputLimits(photos=0),
    # Every command works at any size, and cropping, turning or recolouring a small
    # sticker is a fair request; under 32 px the result is an icon nobody can judge.
    OperationType.EDIT: InputLimits(photos=1, min_side=32),
    # The merged picture takes the smaller of the two heights: one tiny photo shrinks both
    # to a strip (a 1 px tall photo made a 1 px tall result).
    OperationType.MERGE: InputLimits(photos=2, min_side=64),
    # A face must be found in both: the detector's smallest face is 24 px and at least
    # 1/12 of the short side (imaging.faceswap), with room around it.
    OperationType.FACE_SWAP: InputLimits(photos=2, min_side=64),
    # A portrait retouch needs a face, found as for the face swap.
    OperationType.RETOUCH: InputLimits(photos=1, min_side=64),
    # Resampling invents no detail: twice an icon is a bigger icon (a 1×1 photo was
    # "upscaled" to 2×2 and charged).
    OperationType.UPSCALE: InputLimits(photos=1, min_side=64),
    # The smallest font is 7 px plus its outline and margins: under 64 px not even one
    # short word fits readably.
    OperationType.ADD_TEXT: InputLimits(photos=1, min_side=64),
}


def min_side(op_type: OperationType | str) -> int:
    return LIMITS[OperationType(op_type)].min_side


def too_small(op_type: OperationType | str, width: int, height: int) -> bool:
    """Whether a ``width`` × ``height`` photo is under the operation's minimum."""
    return min(width, height) < min_side(op_type)
