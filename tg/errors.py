"""What a failed Telegram call means: the one classification of Telegram's errors.

Every process asks :func:`classify` whether another try may help, instead of keeping its own
list of transient errors (the bot's, the worker's, the web notifier's and the webhook setup's
lists had drifted apart). The table:

============  =========  ==============================================================
kind          transient  what
============  =========  ==============================================================
FLOOD         yes        429 with ``retry_after``: Telegram says when to come back
SERVER        yes        5xx, a gateway's HTML page instead of JSON, a file download
                         answered 5xx or 429: the call was not performed, a retry sends
                         nothing twice
NETWORK       yes        connection lost, timeout: the call may have gone through
BLOCKED       no         403: the user blocked the bot, deleted the account, kicked it
NOT_MODIFIED  no         400 "message is not modified": the edit shows nothing new
REFUSED       no         400 / 404 / 413: chat not found, a file refused or too large
UNEXPECTED    no         401 wrong token, 409 conflict, a chat migrated, a status aiogram
                         does not name: ours to fix, not the chat's doing
============  =========  ==============================================================

Anything else (a bug, a database error) is no Telegram failure: :func:`classify` gives None.
"""

from __future__ import annotations

import asyncio
import enum

import aiohttp
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)


class Kind(enum.Enum):
    FLOOD = "flood"
    SERVER = "server"
    NETWORK = "network"
    BLOCKED = "blocked"
    NOT_MODIFIED = "not-modified"
    REFUSED = "refused"
    UNEXPECTED = "unexpected"

    @property
    def transient(self) -> bool:
        return self in _TRANSIENT


_TRANSIENT = frozenset({Kind.FLOOD, Kind.SERVER, Kind.NETWORK})

# Errors that carry Telegram's answer to a call (or aiogram's account of it failing): the
# worker words them as Telegram's trouble, not as the network's in general.
TELEGRAM_ERRORS = (TelegramAPIError, ClientDecodeError, aiohttp.ClientResponseError)


def classify(exc: BaseException) -> Kind | None:
    """The :class:`Kind` of a failed Telegram call; None for an error that is not one."""
    if isinstance(exc, TelegramRetryAfter):
        return Kind.FLOOD
    if isinstance(exc, (TelegramServerError, ClientDecodeError)):
        return Kind.SERVER
    if isinstance(exc, TelegramEntityTooLarge):  # aiogram makes 413 a network error
        return Kind.REFUSED
    if isinstance(exc, TelegramNetworkError):
        return Kind.NETWORK
    if isinstance(exc, TelegramForbiddenError):
        return Kind.BLOCKED
    if isinstance(exc, TelegramBadRequest):
        if "message is not modified" in exc.message.lower():
            return Kind.NOT_MODIFIED
        return Kind.REFUSED
    if isinstance(exc, TelegramNotFound):
        return Kind.REFUSED
    if isinstance(exc, TelegramAPIError):
        return Kind.UNEXPECTED
    if isinstance(exc, aiohttp.ClientResponseError):  # a file download (aiohttp's own error)
        return Kind.SERVER if exc.status >= 500 or exc.status == 429 else Kind.REFUSED
    if isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError, OSError)):
        return Kind.NETWORK
    return None


def is_transient(exc: BaseException) -> bool:
    """Whether another try of the same call may succeed."""
    kind = classify(exc)
    return kind is not None and kind.transient
