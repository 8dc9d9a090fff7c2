"""The Mini App's API lets in only init data Telegram signed for this bot, not older than
WEBAPP_INIT_MAX_AGE_SECONDS; a refusal is a 401 and a log line without the data; a caller
sees only their own account, whatever the query names."""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qsl, urlencode

import pytest

from billing import accounts
from sandbox.webapp import init_data
from tests.web.conftest import Stack
from tests.web.miniapp import AppCaller, caller, signed


async def _grant(stack: Stack, user_id: int, amount: int) -> None:
    async with stack.sessionmaker() as session:
        await accounts.adjust(session, user_id=user_id, reason="test", amount=amount)
        await session.commit()


async def test_signed_init_data_opens_the_callers_own_account(stack: Stack) -> None:
    user_id, _ = await stack.new_user(7101, language="en")
    await _grant(stack, user_id, 12_345)
    status, body = await caller(stack, 7101, language="en").get("/app/api/balance")
    assert status == 200
    assert (body["balance"], body["balance_text"]) == (12_345, "123,45")
    status, me = await caller(stack, 7101, language="en").get("/app/api/me")
    assert (status, me["lang"]) == (200, "en")
    assert me["texts"]["app-tab-balance"] == "Balance"


async def test_the_same_init_data_is_accepted_again_within_its_age(stack: Stack) -> None:
    app = caller(stack, 7102)
    for _ in range(3):  # Telegram reuses one init data for the app's whole session
        status, _ = await app.get("/app/api/balance")
        assert status == 200


@pytest.mark.parametrize(
    "forge",
    [
        "other_token",
        "flipped_hash",
        "other_user",
        "no_hash",
        "no_header",
        "bearer",
    ],
)
async def test_forged_init_data_is_refused_and_logged_without_the_data(
    stack: Stack, caplog: pytest.LogCaptureFixture, forge: str
) -> None:
    await stack.new_user(7103)
    good = signed(7103)
    fields = dict(parse_qsl(good))
    if forge == "other_token":
        data = init_data("123:another-bot", {"id": 7103, "first_name": "x"})
    elif forge == "flipped_hash":
        fields["hash"] = ("0" if fields["hash"][0] != "0" else "1") + fields["hash"][1:]
        data = urlencode(fields)
    elif forge == "other_user":  # the hash of user 7103 on the data of user 7104
        fields["user"] = fields["user"].replace("7103", "7104")
        data = urlencode(fields)
    elif forge == "no_hash":
        del fields["hash"]
        data = urlencode(fields)
    else:
        data = good
    headers = {}
    if forge != "no_header":
        headers["Authorization"] = ("Bearer " if forge == "bearer" else "tma ") + data
    with caplog.at_level(logging.WARNING, logger="web"):
        async with stack.http.get(stack.url + "/app/api/balance", headers=headers) as resp:
            assert resp.status == 401
            assert await resp.json() == {"error": "unauthorized"}
    refusals = [r.getMessage() for r in caplog.records if "Mini App call refused" in r.message]
    assert len(refusals) == 1, caplog.text
    assert fields.get("hash", "x") not in caplog.text and "7103" not in caplog.text
    assert "hash=" not in caplog.text and "auth_date" not in caplog.text


async def test_stale_init_data_is_refused(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    max_age = stack.settings.WEBAPP_INIT_MAX_AGE_SECONDS
    now = int(time.time())
    stale = AppCaller(stack, signed(7105, auth_date=now - max_age - 5))
    with caplog.at_level(logging.WARNING, logger="web"):
        status, _ = await stale.get("/app/api/balance")
    assert status == 401
    assert "stale init data" in caplog.text
    future = AppCaller(stack, signed(7105, auth_date=now + 3600))
    assert (await future.get("/app/api/balance"))[0] == 401
    fresh_enough = AppCaller(stack, signed(7105, auth_date=now - max_age + 60))
    assert (await fresh_enough.get("/app/api/balance"))[0] == 200


async def test_no_parameter_reads_another_users_account(stack: Stack) -> None:
    mine, _ = await stack.new_user(7106)
    theirs, _ = await stack.new_user(7107)
    await _grant(stack, mine, 1_000)
    await _grant(stack, theirs, 99_900)
    app = caller(stack, 7106)
    for params in ({}, {"user_id": theirs}, {"telegram_id": 7107}, {"user": 7107}):
        status, body = await app.get("/app/api/balance", **params)
        assert (status, body["balance"]) == (200, 1_000)
        status, history = await app.get("/app/api/history", **params)
        assert status == 200
        assert [i["amount"] for i in history["items"]] == [1_000]


async def test_a_caller_new_to_the_bot_gets_an_account_with_the_free_operations(
    stack: Stack,
) -> None:
    status, body = await caller(stack, 7108).get("/app/api/balance")
    assert status == 200
    assert body["free_left"] == stack.settings.FREE_OPERATIONS_COUNT
    async with stack.sessionmaker() as session:
        found = await accounts.find_user_by_telegram_id(session, 7108)
    assert found is not None and found.free_left == stack.settings.FREE_OPERATIONS_COUNT


async def test_the_emulators_init_data_is_signed_as_telegrams(stack: Stack) -> None:
    """The sandbox's chat page opens the Mini App with init data from POST /_emu/webapp: it
    passes the same check as Telegram's (the bot token's HMAC), for that user only."""
    user_id, _ = await stack.new_user(7109, language="en")
    await _grant(stack, user_id, 4_200)
    body = await stack.tg.request("POST", "/_emu/webapp", json={"user_id": 7109})
    app = AppCaller(stack, body["init_data"])
    status, balance = await app.get("/app/api/balance")
    assert (status, balance["balance"]) == (200, 4_200)
    assert (await app.get("/app/api/me"))[1]["lang"] == "en"
    assert body["menu_button"] is None  # the bot set none in this test


async def test_no_bot_token_for_the_real_telegram_lets_nobody_in(make_stack) -> None:  # type: ignore[no-untyped-def]
    from tg.factory import SANDBOX_TOKEN

    stack = await make_stack(BOT_TOKEN=None, TELEGRAM_API_URL="https://api.telegram.org")
    data = init_data(SANDBOX_TOKEN, {"id": 7110, "first_name": "x"})
    status, _ = await AppCaller(stack, data).get("/app/api/balance")
    assert status == 503
