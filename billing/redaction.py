"""Secrets never reach a log line: every process writes the values of its secret settings as
``***`` in each record it logs.

The layers that hold a secret keep it out of what they raise (``tg.session`` for
the bot token); this is the net under them, for whatever slips through — a library's own
log line, an exception that quotes a URL, a stack trace.

:func:`install` is called once by each composition root (bot, workers, web, the sandbox
launcher, the operator CLI). It wraps the record factory (``logging.setLogRecordFactory``),
so every record is cleaned as it is made, whatever logger made it and whichever handlers
then write it: a filter on a logger does not see the records of its child loggers, and a
filter on the root's handlers would miss a handler added later on another logger (RQ adds
its own when it finds none). Forked processes (RQ's work-horses) inherit it. Uncaught
exceptions printed by ``sys.excepthook`` and ``threading.excepthook`` are cleaned too.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import SecretStr

from billing.settings import Settings

REDACTED = "***"
# Shorter values are not hunted for in every line: "1234" would turn up in ids and amounts.
MIN_SECRET_LENGTH = 6


def secret_forms(values: Iterable[str]) -> tuple[str, ...]:
    """The values as they may appear in a text — as is, percent-encoded as in a URL (a bot
    token's ``:`` is ``%3A`` there), and the part after an ``id:`` (a bot token's secret
    half, a fal.ai key's) — longest first, without short ones."""
    forms: set[str] = set()
    for value in values:
        forms.update((value, quote(value, safe=""), value.partition(":")[2]))
    return tuple(sorted((f for f in forms if len(f) >= MIN_SECRET_LENGTH), key=len, reverse=True))


def redact_text(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold: each ``SecretStr`` setting (BOT_TOKEN,
    TELEGRAM_WEBHOOK_SECRET, YOOKASSA_SECRET_KEY, FAL_KEY, and any added later) and the
    passwords in DATABASE_URL and REDIS_URL."""
    values: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr) and value.get_secret_value():
            values.append(value.get_secret_value())
    # API_TOKENS is one secret as a whole; each token's secret may also turn up alone.
    values.extend(token.secret for token in settings.api_tokens)
    for url in (settings.DATABASE_URL, settings.REDIS_URL):
        password = urlsplit(url).password
        if password:
            values.append(password)
    return values


class RedactSecrets(logging.Filter):
    """Writes the secrets as ``***`` in a record's message (its args included), exception
    text and stack; never drops a record."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = secret_forms(secrets)

    def redact(self, text: str) -> str:
        return redact_text(text, self.secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format: the handler reports it as usual
            message = None
        if message is not None:
            clean = self.redact(message)
            if clean != message:
                record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[0] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            clean = self.redact(text)
            if clean != text:
                # Formatters print exc_text when it is set; the exception object itself (its
                # URL, its chain) goes nowhere else.
                record.exc_text, record.exc_info = clean, None
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


_installed: RedactSecrets | None = None


def install(settings: Settings, *, extra: Iterable[str] = ()) -> RedactSecrets:
    """Clean every log record this process (and its forks) makes of the settings' secrets
    and of ``extra``. Calling it again replaces the secrets (one wrapper only)."""
    global _installed
    redactor = RedactSecrets([*secret_values(settings), *extra])
    if _installed is None:
        _wrap_record_factory()
        _wrap_excepthooks()
    _installed = redactor
    return redactor


def redact(text: str) -> str:
    """``text`` with this process's secrets as ``***`` (as is before :func:`install`): for
    what is stored rather than logged — an operation's error column, RQ's traceback."""
    return _installed.redact(text) if _installed is not None else text


def _wrap_record_factory() -> None:
    make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        if _installed is not None:
            _installed.filter(record)
        return record

    logging.setLogRecordFactory(factory)


def _wrap_excepthooks() -> None:
    def report(exc_type: Any, exc: Any, tb: Any, header: str = "") -> None:
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        if _installed is not None:
            text = _installed.redact(text)
        sys.stderr.write(header + text)

    def excepthook(exc_type: Any, exc: Any, tb: Any) -> None:
        report(exc_type, exc, tb)

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else "?"
        report(args.exc_type, args.exc_value, args.exc_traceback, f"Exception in {name}:\n")

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook
