"""``workers.delivery.call``: Telegram's flood control is waited out (with jitter, within a
budget of seconds, not of attempts); 5xx answers are retried a fixed number of times."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiogram.exceptions import TelegramRetryAfter, TelegramServerError
from aiogram.methods import SendPhoto

from tests.conftest import make_settings
from workers import delivery

METHOD = SendPhoto(chat_id=1, photo="x")


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    # The production waits (an in-process worker of an earlier test configured short ones).
    delivery.configure(make_settings("sqlite://", TELEGRAM_RETRY_BACKOFF=delivery.BACKOFF))
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(delivery.asyncio, "sleep", sleep)
    yield slept
    delivery.configure(make_settings("sqlite://"))


def failing(errors: list[Exception]):  # noqa: ANN201
    calls = {"n": 0}

    async def make() -> str:
        calls["n"] += 1
        if errors:
            raise errors.pop(0)
        return "sent"

    return make, calls


async def test_flood_waits_do_not_use_up_the_attempts(waits: list[float]) -> None:
    make, calls = failing([TelegramRetryAfter(METHOD, "flood", retry_after=1) for _ in range(6)])
    assert await delivery.call(make, what="sendPhoto") == "sent"
    assert calls["n"] == 7  # six floods waited out, then sent (it used to give up at three)
    assert len(waits) == 6
    assert all(1.0 <= w <= 1.0 + delivery.FLOOD_JITTER for w in waits)
    assert len(set(waits)) > 1  # jittered: two jobs flooding one chat drift apart


async def test_flood_waits_stop_at_the_budget(waits: list[float]) -> None:
    make, _ = failing([TelegramRetryAfter(METHOD, "flood", retry_after=10) for _ in range(10)])
    with pytest.raises(TelegramRetryAfter):
        await delivery.call(make, what="sendPhoto")
    assert sum(waits) <= delivery.FLOOD_BUDGET
    assert len(waits) == 2  # 10 s + 10 s (+ jitter); a third would pass 30 s


async def test_a_long_flood_wait_goes_back_at_once(waits: list[float]) -> None:
    make, _ = failing([TelegramRetryAfter(METHOD, "flood", retry_after=60)])
    with pytest.raises(TelegramRetryAfter):
        await delivery.call(make, what="sendPhoto")
    assert waits == []


async def test_server_errors_are_tried_three_times(waits: list[float]) -> None:
    make, calls = failing([TelegramServerError(METHOD, "bad gateway") for _ in range(2)])
    assert await delivery.call(make, what="sendPhoto") == "sent"
    assert calls["n"] == 3 and waits == list(delivery.BACKOFF[:2])

    make, calls = failing([TelegramServerError(METHOD, "bad gateway") for _ in range(3)])
    with pytest.raises(TelegramServerError):
        await delivery.call(make, what="sendPhoto")
    assert calls["n"] == 3


async def test_the_waits_between_tries_are_the_settings(waits: list[float]) -> None:
    delivery.configure(make_settings("sqlite://", TELEGRAM_RETRY_BACKOFF="0.2, 0.3"))
    make, calls = failing([TelegramServerError(METHOD, "bad gateway") for _ in range(2)])
    assert await delivery.call(make, what="sendPhoto") == "sent"
    assert calls["n"] == 3 and waits == [0.2, 0.3]
