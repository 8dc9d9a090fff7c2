"""billing.redaction: once installed, no log record a process makes shows a secret setting —
whatever logger made it (child loggers included), whichever handler writes it (one added
afterwards, on a logger that does not propagate, as RQ does), in the message, its args,
the exception text or the stack."""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from billing import redaction
from tests.conftest import make_settings

BOT_TOKEN = "987654321:LEAKCHECK-bot-token-secret-part"
YOOKASSA_KEY = "live_LEAKCHECK-yookassa-secret-key"
FAL_KEY = "LEAKCHECK-fal-key:with-a-colon"
WEBHOOK_SECRET = "LEAKCHECK-telegram-webhook-secret"
DB_PASSWORD = "LEAKCHECK-db-password"
REDIS_PASSWORD = "LEAKCHECK-redis-password"
SECRETS = [BOT_TOKEN, YOOKASSA_KEY, FAL_KEY, WEBHOOK_SECRET, DB_PASSWORD, REDIS_PASSWORD]


@pytest.fixture
def settings():  # noqa: ANN201
    return make_settings(
        f"postgresql+asyncpg://app:{DB_PASSWORD}@127.0.0.1:5432/app",
        f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0",
        BOT_TOKEN=BOT_TOKEN,
        YOOKASSA_SHOP_ID="123456",
        YOOKASSA_SECRET_KEY=YOOKASSA_KEY,
        FAL_KEY=FAL_KEY,
        TELEGRAM_WEBHOOK_URL="https://bot.example.org/tg",
        TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )


@pytest.fixture
def restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """install() changes the process: undo it after the test."""
    factory = logging.getLogRecordFactory()
    monkeypatch.setattr(redaction, "_installed", None)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    yield
    logging.setLogRecordFactory(factory)


def _handler(logger: logging.Logger) -> io.StringIO:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    return stream


def _log_everything(logger: logging.Logger) -> None:
    url = f"https://api.telegram.org/file/bot{BOT_TOKEN}/photos/file_1.jpg"
    logger.warning("download of %s failed", url)  # in the args
    logger.warning(f"YooKassa key {YOOKASSA_KEY}, fal {quote(FAL_KEY, safe='')}")  # msg
    logger.info("%(secret)s in a mapping", {"secret": WEBHOOK_SECRET})
    try:
        try:
            raise ConnectionError(f"redis://:{REDIS_PASSWORD}@127.0.0.1")
        except ConnectionError as exc:
            raise RuntimeError(f"502, url={url!r}, db={DB_PASSWORD}") from exc
    except RuntimeError:
        logger.exception("job failed")
    logger.info("here", stack_info=True)


def test_every_secret_setting_is_found(settings) -> None:  # noqa: ANN001
    assert sorted(redaction.secret_values(settings)) == sorted(SECRETS)


def test_no_record_shows_a_secret_whatever_logger_or_handler(
    settings,  # noqa: ANN001
    restore_logging: None,
) -> None:
    root = logging.getLogger()
    child = logging.getLogger("leakcheck.child.of.a.child")
    child.setLevel(logging.INFO)
    own = logging.getLogger("leakcheck.own")  # like RQ's, with its handler and no propagation
    own.setLevel(logging.INFO)
    own.propagate = False
    root_stream = _handler(root)
    try:
        redaction.install(settings)
        own_stream = _handler(own)  # added after install, as RQ adds its handlers
        _log_everything(child)
        _log_everything(own)
    finally:
        for logger in (root, own):
            for handler in list(logger.handlers):
                if isinstance(handler, logging.StreamHandler) and isinstance(
                    handler.stream, io.StringIO
                ):
                    logger.removeHandler(handler)
    for stream in (root_stream, own_stream):
        written = stream.getvalue()
        # What was logged is all there, but the secrets.
        assert "download of https://api.telegram.org/file/bot***/photos/file_1.jpg" in written
        assert "YooKassa key ***, fal ***" in written
        assert "*** in a mapping" in written
        assert "RuntimeError: 502, url='https://api.telegram.org/file/bot***/" in written
        assert "ConnectionError: redis://:***@127.0.0.1" in written
        assert "Stack (most recent call last)" in written
        for secret in SECRETS:
            assert secret not in written
            assert quote(secret, safe="") not in written
        assert BOT_TOKEN.split(":")[1] not in written


def test_records_without_secrets_are_left_as_they_are(settings) -> None:  # noqa: ANN001
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "operation %s: %s", (7, "ok"), None)
    redaction.RedactSecrets(redaction.secret_values(settings)).filter(record)
    assert (record.msg, record.args) == ("operation %s: %s", (7, "ok"))


def test_short_values_are_not_hunted_for() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "balance 1234 ₽", None, None)
    redaction.RedactSecrets(["1234"]).filter(record)
    assert record.getMessage() == "balance 1234 ₽"


def test_an_uncaught_exception_is_printed_without_secrets(
    settings,  # noqa: ANN001
    restore_logging: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    redaction.install(settings)
    try:
        raise ValueError(f"token {BOT_TOKEN}")
    except ValueError:
        sys.excepthook(*sys.exc_info())
    printed = capsys.readouterr().err
    assert "ValueError: token ***" in printed
    assert BOT_TOKEN not in printed
