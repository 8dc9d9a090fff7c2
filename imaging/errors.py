"""Named errors of the media operations.

Every error is a :class:`MediaError`; each has a stable ``code`` its caller maps to
a localized message (imaging has no texts), and carries the data that message needs. None of them
contains the user's image.
"""

from __future__ import annotations

from typing import Literal

Which = Literal["a", "b"]
"""Which input photo an error is about: ``"a"`` the first, ``"b"`` the second."""


class MediaError(Exception):
    """Base class of every error raised by ``imaging``."""

    code: str = "media-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidImage(MediaError):
    """The bytes are not an image we can read (not an image, truncated, unsupported)."""

    code = "invalid-image"

    def __init__(self, message: str, *, which: Which | None = None) -> None:
        super().__init__(message)
        self.which = which


class ImageTooLarge(MediaError):
    """The input (or the output an operation would make) passes a size limit.

    ``width``/``height`` are the offending dimensions (of the input, or of the
    output it would produce; ``None`` when the file is refused by its byte size
    before it is read), ``limit_pixels`` the pixel limit in force.
    """

    code = "image-too-large"

    def __init__(
        self,
        message: str,
        *,
        width: int | None,
        height: int | None,
        limit_pixels: int,
        which: Which | None = None,
    ) -> None:
        super().__init__(message)
        self.width = width
        self.height = height
        self.limit_pixels = limit_pixels
        self.which = which


class ImageTooSmall(MediaError):
    """The input is under the operation's minimum: ``min_side`` px on its shorter side."""

    code = "image-too-small"

    def __init__(
        self, *, width: int, height: int, min_side: int, which: Which | None = None
    ) -> None:
        super().__init__(f"{width}x{height} is under the minimum of {min_side} px per side")
        self.width = width
        self.height = height
        self.min_side = min_side
        self.which = which


class NoFaceFound(MediaError):
    """No face was detected in photo ``which`` ("a" = the first, "b" = the second, "both":
    in neither of two; None: in the one photo of the operation)."""

    code = "no-face-found"

    def __init__(self, which: Which | Literal["both"] | None = None) -> None:
        where = {"a": "the first photo", "b": "the second photo", "both": "either photo"}
        super().__init__(f"no face found in {where.get(which or '', 'the photo')}")
        self.which = which


class NothingChanged(MediaError):
    """The operation would give back the picture it got (an edit that changes no pixel:
    black and white of a black-and-white photo, a square crop of a square)."""

    code = "nothing-changed"


class InstructionError(MediaError):
    """An edit instruction could not be understood.

    ``reason`` is one of ``"empty"``, ``"unknown"`` (``fragment`` is the part not
    understood), ``"bad-value"`` (a known command with a missing or out-of-range
    number; ``fragment`` is that command), ``"too-many"`` (more steps than allowed),
    ``"too-long"`` (the text itself) and ``"no-effect"`` (every step changes by 0).
    The caller words it, with the help lines of every command (texts.edit_texts).
    """

    code = "instruction-error"

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        fragment: str | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.fragment = fragment


class InvalidText(MediaError):
    """The caption text for ``add_text`` is empty or too long."""

    code = "invalid-text"

    def __init__(self, message: str, *, reason: str, max_length: int) -> None:
        super().__init__(message)
        self.reason = reason
        self.max_length = max_length


class BackendError(MediaError):
    """A remote backend (fal.ai) failed.

    ``transient`` tells the job layer whether a retry may succeed (5xx, network
    errors, timeouts) or not (4xx: bad key, rejected input, unusable answer).
    """

    code = "backend-error"

    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        status: int | None = None,
        detail: object = None,
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status
        self.detail = detail  # the error body the backend answered, parsed (its words)

    def __repr__(self) -> str:
        return f"BackendError({self.message!r}, transient={self.transient}, status={self.status})"
