"""What went wrong in a job, whether another attempt may help, and how to tell the user.

Every exception that ends an attempt is mapped to a :class:`Failure`: a ``reason`` (the
suffix of the ``worker-reason-*`` text), ``transient`` (a retry may succeed: network,
Telegram 5xx/429, a database or Redis hiccup, a remote backend's 5xx) and the values the
text needs. Permanent failures (no face found, an image we cannot read, a result Telegram
refuses) fail at once; transient ones are retried by RQ and refunded after the last attempt.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq.exceptions import AbandonedJobError
from rq.timeouts import BaseTimeoutException
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from imaging.errors import (
    BackendError,
    ImageTooLarge,
    ImageTooSmall,
    InstructionError,
    InvalidImage,
    InvalidText,
    MediaError,
    NoFaceFound,
    NothingChanged,
)
from tg.errors import TELEGRAM_ERRORS, is_transient

# Failures caused by what the user sent (no face, a file that is no image, a photo too small,
# an edit that changes nothing...): refunded at once and logged as one line, never as an
# error with a traceback, which stays for what an operator must look at.
USER_INPUT_REASONS = frozenset(
    {
        "no-face",
        "invalid-image",
        "image-too-large",
        "image-too-small",
        "instruction",
        "invalid-text",
        "no-change",
        "input-too-large",
        # The model's provider refused (its safety checker) or rejected the input: no retry.
        "model-refused",
        "model-input",
    }
)


@dataclass(frozen=True)
class Failure:
    reason: str
    transient: bool
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def expected(self) -> bool:
        """A refusal of the user's input: nothing went wrong on our side."""
        return not self.transient and self.reason in USER_INPUT_REASONS


class JobFailure(Exception):
    """A failure the job itself recognised (a missing input, an undeliverable result...)."""

    def __init__(
        self, reason: str, message: str, *, transient: bool = False, **params: Any
    ) -> None:
        super().__init__(message)
        self.failure = Failure(reason, transient, params)


class OperationTimedOut(JobFailure):
    """The job's own watchdog, a little before RQ's SIGALRM: a slow operation stays slow."""

    def __init__(self, seconds: float) -> None:
        super().__init__("timeout", f"operation did not finish within {seconds:.0f} s")


TRANSIENT_IO = (
    aiohttp.ClientConnectionError,
    aiohttp.ServerTimeoutError,
    asyncio.TimeoutError,
    ConnectionError,
    RedisConnectionError,
    RedisTimeoutError,
    OperationalError,
    InterfaceError,
)


def _which(exc: Exception) -> dict[str, Any]:
    which = getattr(exc, "which", None)
    return {"which": which} if which in ("a", "b") else {}


def classify(exc: BaseException | None) -> Failure:
    """The :class:`Failure` an exception stands for."""
    if isinstance(exc, JobFailure):
        return exc.failure
    if isinstance(exc, BaseTimeoutException):  # RQ's death penalty (SIGALRM)
        return Failure("timeout", False)
    if isinstance(exc, AbandonedJobError):  # the worker died: RQ cleaned its registry
        return Failure("crashed", True)
    if isinstance(exc, NoFaceFound):
        return Failure("no-face", False, {"which": exc.which} if exc.which else {})
    if isinstance(exc, NothingChanged):
        return Failure("no-change", False)
    if isinstance(exc, InvalidImage):
        return Failure("invalid-image", False, _which(exc))
    if isinstance(exc, ImageTooLarge):
        return Failure("image-too-large", False, _which(exc))
    if isinstance(exc, ImageTooSmall):
        size = {"width": exc.width, "height": exc.height, "min": exc.min_side}
        return Failure("image-too-small", False, {**_which(exc), **size})
    if isinstance(exc, InstructionError):
        return Failure("instruction", False)
    if isinstance(exc, InvalidText):
        return Failure("invalid-text", False)
    if isinstance(exc, BackendError):
        return Failure("backend", exc.transient)
    if isinstance(exc, MediaError):
        return Failure("media", False)
    if isinstance(exc, TELEGRAM_ERRORS):  # whether another try may help: tg.errors says
        return Failure("telegram", is_transient(exc))
    if isinstance(exc, TRANSIENT_IO):
        return Failure("unavailable", True)
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return Failure("unavailable", True)
    # A bug or something unforeseen: RQ's retries decide, the refund follows the last one.
    return Failure("internal", True)
