"""The one Telegram layer: the classification table of Telegram's errors and the one retry
and flood-wait rule (``tg.retry.retry_call``) every process retries its calls with."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiogram.exceptions import (
    ClientDecodeError,
    RestartingTelegram,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import SendMessage
from aiohttp.client_reqrep import RequestInfo
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from tg import retry
from tg.errors import Kind, classify, is_transient
from tg.retry import RetryPolicy, retry_call

METHOD = SendMessage(chat_id=1, text="x")


def _download_error(status: int) -> aiohttp.ClientResponseError:
    info = RequestInfo(URL("http://t/file/x"), "GET", CIMultiDictProxy(CIMultiDict()))
    return aiohttp.ClientResponseError(info, (), status=status, message="")


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (TelegramRetryAfter(METHOD, "Too Many Requests", retry_after=3), Kind.FLOOD),
        (TelegramServerError(METHOD, "Bad Gateway"), Kind.SERVER),
        (RestartingTelegram(METHOD, "Restarting"), Kind.SERVER),
        (ClientDecodeError("not JSON", ValueError(), "<html>502</html>"), Kind.SERVER),
        (_download_error(502), Kind.SERVER),
        (_download_error(429), Kind.SERVER),
        (TelegramNetworkError(METHOD, "Request timeout error"), Kind.NETWORK),
        (aiohttp.ClientConnectionError("reset"), Kind.NETWORK),
        (TimeoutError(), Kind.NETWORK),
        (ConnectionResetError(), Kind.NETWORK),
        (TelegramForbiddenError(METHOD, "Forbidden: bot was blocked by the user"), Kind.BLOCKED),
        (TelegramForbiddenError(METHOD, "Forbidden: user is deactivated"), Kind.BLOCKED),
        (
            TelegramBadRequest(METHOD, "Bad Request: message is not modified: specified new"),
            Kind.NOT_MODIFIED,
        ),
        (TelegramBadRequest(METHOD, "Bad Request: chat not found"), Kind.REFUSED),
        (TelegramBadRequest(METHOD, "Bad Request: file is too big"), Kind.REFUSED),
        (TelegramNotFound(METHOD, "Not Found"), Kind.REFUSED),
        (TelegramEntityTooLarge(METHOD, "Request Entity Too Large"), Kind.REFUSED),
        (_download_error(404), Kind.REFUSED),
        (TelegramUnauthorizedError(METHOD, "Unauthorized"), Kind.UNEXPECTED),
        (TelegramConflictError(METHOD, "Conflict"), Kind.UNEXPECTED),
        (TelegramMigrateToChat(METHOD, "migrated", migrate_to_chat_id=-100), Kind.UNEXPECTED),
        (TelegramAPIError(METHOD, "Teapot"), Kind.UNEXPECTED),
        (ValueError("a bug"), None),
    ],
)
def test_the_classification_table(exc: BaseException, kind: Kind | None) -> None:
    assert classify(exc) is kind
    assert is_transient(exc) is (kind in (Kind.FLOOD, Kind.SERVER, Kind.NETWORK))


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(retry.asyncio, "sleep", sleep)
    return slept


def failing(errors: list[Exception]) -> tuple[Callable[[], Awaitable[str]], list[int]]:
    calls = [0]

    async def make() -> str:
        calls[0] += 1
        if errors:
            raise errors.pop(0)
        return "sent"

    return make, calls


def flood(seconds: float) -> TelegramRetryAfter:
    return TelegramRetryAfter(METHOD, "flood", retry_after=int(seconds))


POLICY = RetryPolicy(
    attempts=2, backoff=(0.5, 1.0), max_retry_after=15.0, flood_budget=30.0, flood_jitter=0.5
)


async def test_flood_waits_do_not_use_up_the_attempts(waits: list[float]) -> None:
    errors: list[Exception] = [flood(1) for _ in range(5)] + [TelegramServerError(METHOD, "5xx")]
    make, calls = failing(errors)
    assert await retry_call(make, POLICY, what="x") == "sent"
    assert calls == [7]  # five floods and one 5xx waited out with two attempts
    assert len(waits) == 6 and all(1.0 <= w <= 1.5 for w in waits[:5])
    assert waits[5] == 0.5 and len(set(waits[:5])) > 1  # floods jittered, the back-off not


async def test_the_attempts_bound_the_5xx_and_network_errors(waits: list[float]) -> None:
    make, calls = failing([TelegramServerError(METHOD, "5xx"), TelegramNetworkError(METHOD, "x")])
    with pytest.raises(TelegramNetworkError):
        await retry_call(make, POLICY, what="x")
    assert calls == [2] and waits == [0.5]


async def test_flood_waits_stop_at_the_budget_and_a_long_one_is_not_begun(
    waits: list[float],
) -> None:
    make, calls = failing([flood(10) for _ in range(5)])
    with pytest.raises(TelegramRetryAfter):
        await retry_call(make, POLICY, what="x")
    assert len(waits) == 2 and sum(waits) <= 30.0  # a third 10 s would pass the budget
    waits.clear()
    make, calls = failing([flood(16)])
    with pytest.raises(TelegramRetryAfter):
        await retry_call(make, POLICY, what="x")
    assert waits == [] and calls == [1]  # over max_retry_after: the caller waits elsewhere


async def test_a_flood_wait_longer_than_the_remaining_deadline_is_not_begun(
    waits: list[float],
) -> None:
    loop = asyncio.get_running_loop()
    make, calls = failing([flood(5)])
    with pytest.raises(TelegramRetryAfter):
        await retry_call(make, POLICY, what="x", until=loop.time() + 4.0)
    assert waits == [] and calls == [1]
    # One that fits, but not with the room the next try needs, is not begun either.
    make, calls = failing([flood(1)])
    with pytest.raises(TelegramRetryAfter):
        await retry_call(make, POLICY, what="x", until=loop.time() + 3.0, room=5.0)
    assert waits == []
    # Nor a back-off.
    make, calls = failing([TelegramServerError(METHOD, "5xx")])
    with pytest.raises(TelegramServerError):
        await retry_call(make, POLICY, what="x", until=loop.time() + 0.2)
    assert waits == []
    # With time enough, the same wait is waited out.
    make, calls = failing([flood(5)])
    assert await retry_call(make, POLICY, what="x", until=loop.time() + 60.0) == "sent"
    assert len(waits) == 1 and 5.0 <= waits[0] <= 5.5


async def test_what_is_retried_is_the_policys_choice(waits: list[float]) -> None:
    no_network = RetryPolicy(attempts=3, retry_network=False)
    make, calls = failing([TelegramNetworkError(METHOD, "reset")])
    with pytest.raises(TelegramNetworkError):  # it may have gone through: not sent twice
        await retry_call(make, no_network, what="x")
    assert calls == [1]
    for refusal in (TelegramForbiddenError(METHOD, "blocked"), ValueError("a bug")):
        make, calls = failing([refusal])
        with pytest.raises(type(refusal)):
            await retry_call(make, POLICY, what="x")
        assert calls == [1]
    assert waits == []
    forever = RetryPolicy(
        attempts=None,
        backoff=(1.0, 2.0),
        max_retry_after=math.inf,
        flood_budget=math.inf,
        retry_permanent=True,
    )
    errors: list[Exception] = [TelegramUnauthorizedError(METHOD, "401") for _ in range(4)]
    make, calls = failing([*errors, flood(100)])
    assert await retry_call(make, forever, what="x") == "sent"
    assert calls == [6] and waits[:4] == [1.0, 2.0, 2.0, 2.0] and waits[4] >= 100


async def test_retries_are_logged_on_the_callers_logger(
    waits: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.INFO)
    mine = logging.getLogger("tests.caller")
    make, _ = failing([flood(1), TelegramServerError(METHOD, "5xx")])
    await retry_call(make, POLICY, what="sendMessage", logger=mine)
    lines = [(r.name, r.getMessage()) for r in caplog.records]
    assert [name for name, _ in lines] == ["tests.caller"] * 3
    assert "sendMessage failed (attempt 1): flood control, waiting 1 s" in lines[0][1]
    assert "sendMessage failed (attempt 2): TelegramServerError" in lines[1][1]
    assert lines[2][1] == "sendMessage done (attempt 3)"
