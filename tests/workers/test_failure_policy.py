"""Which failures are retried and which are refunded at once, how a result is sent, and
that every text the worker may need exists in both languages. No worker processes here."""

from __future__ import annotations

from types import SimpleNamespace

import aiohttp
import pytest
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import SendPhoto
from redis import Redis
from rq.exceptions import AbandonedJobError
from rq.timeouts import JobTimeoutException

from billing.models import Funding
from billing.operations import RefundResult
from imaging._image import MediaResult
from imaging.errors import (
    BackendError,
    ImageTooLarge,
    InstructionError,
    InvalidImage,
    NoFaceFound,
)
from jobqueue.queue import JOB_FUNCTION
from texts.i18n import keys, t
from workers import callbacks
from workers.delivery import Plan, plan_delivery
from workers.failures import Failure, JobFailure, OperationTimedOut, classify
from workers.lock import lock_key
from workers.messages import failure_notice, what_was_done

METHOD = SendPhoto(chat_id=1, photo="x")


@pytest.mark.parametrize(
    ("exc", "reason", "transient"),
    [
        (NoFaceFound("a"), "no-face", False),
        (InvalidImage("broken", which="b"), "invalid-image", False),
        (ImageTooLarge("big", width=9000, height=9000, limit_pixels=1), "image-too-large", False),
        (InstructionError("?", reason="unknown"), "instruction", False),
        (BackendError("5xx", transient=True, status=502), "backend", True),
        (BackendError("401", transient=False, status=401), "backend", False),
        (JobTimeoutException("SIGALRM"), "timeout", False),
        (OperationTimedOut(10), "timeout", False),
        (AbandonedJobError(), "crashed", True),
        (TelegramServerError(METHOD, "Bad Gateway"), "telegram", True),
        (TelegramRetryAfter(METHOD, "flood", retry_after=30), "telegram", True),
        (TelegramNetworkError(METHOD, "reset"), "telegram", True),
        (ClientDecodeError("not JSON", ValueError(), "<html>502</html>"), "telegram", True),
        (TelegramBadRequest(METHOD, "chat not found"), "telegram", False),
        (TelegramForbiddenError(METHOD, "blocked"), "telegram", False),
        # 413: aiogram's type is a network error, but a file too large stays too large.
        (TelegramEntityTooLarge(METHOD, "Request Entity Too Large"), "telegram", False),
        (aiohttp.ClientConnectionError("refused"), "unavailable", True),
        (ConnectionRefusedError(), "unavailable", True),
        (JobFailure("undeliverable", "5xx", transient=True), "undeliverable", True),
        (KeyError("a bug"), "internal", True),
    ],
)
def test_failures_are_classified(exc: BaseException, reason: str, transient: bool) -> None:
    failure = classify(exc)
    assert (failure.reason, failure.transient) == (reason, transient)


TOKEN = "7" * 32


def _job(retries_left: int | None) -> SimpleNamespace:
    return SimpleNamespace(
        func_name=JOB_FUNCTION,
        args=(7, [], TOKEN),
        retries_left=retries_left,
        id=f"op-7-{TOKEN}",
        connection=None,
    )


@pytest.fixture
def refunds(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, Failure]]:
    seen: list[tuple[int, Failure]] = []
    monkeypatch.setattr(
        callbacks, "_refund_now", lambda op, failure, detail, **k: seen.append((op, failure))
    )
    monkeypatch.setattr(callbacks, "release_lock", lambda *a, **k: None)
    return seen


def test_transient_failure_with_retries_left_waits_for_the_retry(refunds) -> None:
    job = _job(retries_left=1)
    callbacks.on_job_failure(
        job, None, TelegramServerError, TelegramServerError(METHOD, "x"), None
    )
    assert refunds == [] and job.retries_left == 1


def test_permanent_failure_refunds_at_once_and_cancels_the_retries(refunds) -> None:
    job = _job(retries_left=2)
    callbacks.on_job_failure(job, None, NoFaceFound, NoFaceFound("b"), None)
    assert refunds == [(7, Failure("no-face", False, {"which": "b"}))]
    assert job.retries_left == 0  # RQ reads this very object right after the callback


def test_last_attempt_refunds(refunds) -> None:
    callbacks.on_job_failure(_job(retries_left=0), None, KeyError, KeyError("x"), None)
    callbacks.on_job_failure(_job(retries_left=None), None, KeyError, KeyError("x"), None)
    assert [op for op, _ in refunds] == [7, 7]


def test_killed_horse_refunds_only_without_retries(refunds) -> None:
    callbacks.on_work_horse_killed(_job(retries_left=1), 123, 9)
    assert refunds == []
    callbacks.on_work_horse_killed(_job(retries_left=0), 123, 9)
    assert refunds == [(7, Failure("crashed", True))]


def test_an_abandoned_job_is_refunded_only_when_nothing_holds_it(
    refunds, redis_url, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RQ reports an abandoned job from whichever worker cleans its registry. The dead
    worker's horse may live on (a process group of its own) and still deliver: while it
    holds the operation's lock nothing is refunded (the horse posts, or the sweeper voids at
    the deadline), and that lock is not the cleaner's to free."""
    released: list[object] = []
    monkeypatch.setattr(callbacks, "release_lock", lambda *a, **k: released.append(a))
    redis = Redis.from_url(redis_url)
    lock = lock_key(7, TOKEN)
    redis.set(lock, "4242:orphan", ex=60)
    try:
        job = _job(retries_left=0)
        callbacks.on_job_failure(job, redis, AbandonedJobError, AbandonedJobError(), None)
        assert refunds == [] and job.retries_left == 0
        assert released == [] and redis.exists(lock)
    finally:
        redis.delete(lock)
    callbacks.on_job_failure(
        _job(retries_left=0), redis, AbandonedJobError, AbandonedJobError(), None
    )
    assert refunds == [(7, Failure("crashed", True))]
    assert released == []
    redis.close()


def test_jobs_that_are_not_ours_are_left_alone(refunds) -> None:
    other = SimpleNamespace(func_name="somebody.else", args=(7,), retries_left=0)
    callbacks.on_job_failure(other, None, KeyError, KeyError("x"), None)
    callbacks.on_work_horse_killed(other, 1, 9)
    assert refunds == []


def _result(width: int, height: int, size: int = 1000, fmt: str = "jpeg") -> MediaResult:
    return MediaResult(data=b"x" * size, format=fmt, width=width, height=height, op="edit")


def test_delivery_plan_follows_telegrams_photo_limits() -> None:
    assert plan_delivery(_result(1280, 960), lossless=False) == Plan(True, False)
    assert plan_delivery(_result(1280, 960), lossless=True) == Plan(True, True)  # upscale
    assert plan_delivery(_result(1280, 960, fmt="png"), lossless=False) == Plan(True, True)
    assert plan_delivery(_result(6000, 4001), lossless=False) == Plan(False, False)  # w+h > 10000
    assert plan_delivery(_result(4000, 150), lossless=False) == Plan(False, False)  # ratio > 20
    # Past 2560 px Telegram shrinks the photo: the full size is offered by 📎 (the document
    # on a tap). Over the photo limits the document is the result: no button.
    assert plan_delivery(_result(5120, 1920), lossless=False) == Plan(True, True)  # a merge
    assert plan_delivery(_result(2560, 1920), lossless=False) == Plan(True, False)
    big = 10 * 1024 * 1024 + 1
    assert plan_delivery(_result(1280, 960, size=big), lossless=False) == Plan(False, False)


def test_worker_texts_exist_in_both_languages() -> None:
    ru, en = keys("ru"), keys("en")
    worker_keys = {k for k in ru | en if k.startswith(("worker-", "media-result-"))}
    assert worker_keys <= ru and worker_keys <= en
    reasons = {
        "no-face",
        "invalid-image",
        "image-too-large",
        "instruction",
        "invalid-text",
        "backend",
        "media",
        "timeout",
        "crashed",
        "deadline",
        "telegram",
        "undeliverable",
        "input-missing",
        "input-too-large",
        "unavailable",
        "internal",
    }
    assert {f"worker-reason-{r}" for r in reasons} <= worker_keys
    ops = {"upscale", "retouch", "edit", "merge", "faceswap", "text", "generate", "noop"}
    assert {f"media-result-{op}" for op in ops} <= worker_keys


def test_notice_says_what_came_back() -> None:
    money = RefundResult(1, 1, Funding.BALANCE, 1050, 0, 12345, 0)
    assert failure_notice(Failure("deadline", False), money, "ru") == (
        "❌ Не получилось: задача не выполнилась вовремя.\n"
        "10,50 ₽ возвращены на баланс. Баланс: 123,45 ₽."
    )
    free = RefundResult(1, 1, Funding.FREE, 0, 1, 0, 2)
    assert failure_notice(Failure("no-face", False, {"which": "b"}), free, "en") == (
        "❌ That didn't work: no face found in the second photo. Send a photo where the face "
        "is clearly visible.\nYour free operation is back. Free operations left: 2."
    )
    nothing = RefundResult(1, 1, Funding.NONE, 0, 0, 0, 0)
    assert t("worker-refunded-none", "ru") in failure_notice(Failure("x", False), nothing, "ru")


def test_caption_values_are_escaped_for_html() -> None:
    result = MediaResult(
        data=b"",
        format="jpeg",
        width=1,
        height=1,
        op="text",
        params={"missing": "<b>x</b> & y"},
    )
    for lang in ("en", "ru"):
        assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in what_was_done(result, lang)
        assert "<b>" not in what_was_done(result, lang)


def test_edit_steps_are_worded_in_the_users_language() -> None:
    # imaging gives the steps as codes (it has no texts); the caption words them
    result = MediaResult(
        data=b"",
        format="jpeg",
        width=1,
        height=1,
        op="edit",
        params={"steps": "grayscale,brightness:-20", "count": 2},
    )
    assert what_was_done(result, "en") == "✏️ Done: grayscale, brightness -20%."
    assert what_was_done(result, "ru") == "✏️ Готово: ч/б, яркость -20%."


def test_a_refund_that_meets_a_database_restart_is_tried_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The database comes back within the pauses: refunded now, not at the deadline."""
    calls: list[int] = []
    pauses: list[float] = []

    async def refund(settings, operation_id, failure, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(operation_id)
        if len(calls) < 3:
            raise OSError("the database system is starting up")

    monkeypatch.setattr(callbacks, "refund_and_notify", refund)
    monkeypatch.setattr(callbacks.runtime, "settings", lambda: None)
    monkeypatch.setattr(callbacks.time, "sleep", pauses.append)
    callbacks._refund_now(7, Failure("crashed", True), detail="x")
    assert calls == [7, 7, 7]
    assert pauses == list(callbacks.REFUND_RETRY_PAUSES[:2])


def test_a_refund_that_keeps_failing_is_left_to_the_sweeper(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []
    pauses: list[float] = []

    async def refund(settings, operation_id, failure, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(operation_id)
        raise OSError("connection refused")

    monkeypatch.setattr(callbacks, "refund_and_notify", refund)
    monkeypatch.setattr(callbacks.runtime, "settings", lambda: None)
    monkeypatch.setattr(callbacks.time, "sleep", pauses.append)
    callbacks._refund_now(7, Failure("crashed", True), detail="x")  # never raises
    assert len(calls) == len(callbacks.REFUND_RETRY_PAUSES) + 1
    assert pauses == list(callbacks.REFUND_RETRY_PAUSES)
    assert "the sweeper will retry it" in caplog.text
