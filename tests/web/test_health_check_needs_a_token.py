"""/yookassa/health?check=1 is no lever on YooKassa: a fresh API check needs the operator's
token, its answer is reused for a while, and one check at a time runs however many ask.

Decision: without a token the route answers the last check's result and its age (or that no
check was made yet, and that a fresh one needs the token), never making a call; a token that
does not match (or any token while HEALTH_CHECK_TOKEN is unset) is a 401.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.web.conftest import Stack, StackFactory
from web.keys import API_CHECK

TOKEN = "operator-health-token-for-tests"
AUTHORISED = {"Authorization": f"Bearer {TOKEN}"}
PATH = "/yookassa/health?check=1"


async def _get(stack: Stack, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    async with stack.http.get(stack.url + PATH, headers=headers) as resp:
        return resp.status, await resp.json()


async def _burst(stack: Stack, headers: dict[str, str] | None, n: int = 50) -> list:
    return await asyncio.gather(*(_get(stack, headers) for _ in range(n)))


async def _api_calls(stack: Stack) -> int:
    return len(await stack.yk.requests(operation="get"))


async def test_fifty_anonymous_checks_call_yookassa_never(make_stack: StackFactory) -> None:
    stack = await make_stack(HEALTH_CHECK_TOKEN=TOKEN)
    answers = await _burst(stack, None)
    assert {status for status, _ in answers} == {200}
    assert answers[0][1] == {
        "configured": True,
        "api": "not_checked",
        "detail": "a fresh check needs the operator token",
        "status": "ok",
    }
    assert await _api_calls(stack) == 0

    # The operator's check is then what anonymous callers see, with its age.
    status, body = await _get(stack, AUTHORISED)
    assert (status, body["api"]) == (200, "ok")
    answers = await _burst(stack, None)
    assert all(body["api"] == "ok" and body["checked_seconds_ago"] >= 0 for _, body in answers)
    assert await _api_calls(stack) == 1


async def test_fifty_authorised_checks_at_once_make_one_api_call(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(HEALTH_CHECK_TOKEN=TOKEN)
    # The check's API call waits until all fifty have asked for a fresh answer: the whole
    # burst arrives while the check runs, however slowly the requests come in.
    check = stack.server.app[API_CHECK]
    asked, all_asked = 0, asyncio.Event()
    fresh, ping = check.fresh, check.probe

    async def counted_fresh():  # type: ignore[no-untyped-def]
        nonlocal asked
        asked += 1
        if asked == 50:
            all_asked.set()
        return await fresh()

    async def held_ping() -> bool:
        await all_asked.wait()
        return await ping()

    check.fresh, check.probe = counted_fresh, held_ping  # type: ignore[method-assign]
    answers = await _burst(stack, AUTHORISED)
    assert {(status, body["api"]) for status, body in answers} == {(200, "ok")}
    assert asked == 50
    assert await _api_calls(stack) == 1


async def test_an_expired_answer_is_checked_again_once(make_stack: StackFactory) -> None:
    stack = await make_stack(HEALTH_CHECK_TOKEN=TOKEN)
    assert (await _get(stack, AUTHORISED))[0] == 200
    assert await _api_calls(stack) == 1
    check = stack.server.app[API_CHECK]
    real_clock = check.clock
    check.clock = lambda: real_clock() + check.ttl + 1  # the answer is now past its age
    await stack.yk.fail_next(1, only="get", status=500)  # and the API has gone bad since
    answers = await _burst(stack, AUTHORISED)
    assert {(status, body["api"]) for status, body in answers} == {(503, "unreachable")}
    assert await _api_calls(stack) == 2
    status, body = await _get(stack)  # anonymous: the new answer, no third call
    assert body.pop("checked_seconds_ago") >= 0
    assert (status, body) == (
        503,
        {"configured": True, "api": "unreachable", "status": "unavailable"},
    )
    assert await _api_calls(stack) == 2


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer wrong-token",
        f"Bearer {TOKEN}x",
        "Bearer ",
        f"Basic {TOKEN}",
        TOKEN,
    ],
)
async def test_a_wrong_token_is_refused_and_calls_nothing(
    make_stack: StackFactory, caplog: pytest.LogCaptureFixture, authorization: str
) -> None:
    stack = await make_stack(HEALTH_CHECK_TOKEN=TOKEN)
    answers = await _burst(stack, {"Authorization": authorization}, n=10)
    assert answers == [(401, {"status": "unauthorized"})] * 10
    assert await _api_calls(stack) == 0
    refusals = [r for r in caplog.records if "health check refused (401)" in r.getMessage()]
    assert len(refusals) == 10
    assert all(r.levelno == logging.WARNING and not r.exc_info for r in refusals)
    assert not any("wrong-token" in r.getMessage() for r in caplog.records)


async def test_without_a_configured_token_no_fresh_check_is_ever_made(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack()  # HEALTH_CHECK_TOKEN unset
    assert (await _get(stack, {"Authorization": "Bearer anything"}))[0] == 401
    assert (await _get(stack, {"Authorization": "Bearer "}))[0] == 401
    status, body = await _get(stack)
    assert (status, body["api"]) == (200, "not_checked")
    assert await _api_calls(stack) == 0
    # The plain answer stays open.
    async with stack.http.get(stack.url + "/yookassa/health") as resp:
        assert (resp.status, await resp.json()) == (200, {"configured": True, "status": "ok"})
