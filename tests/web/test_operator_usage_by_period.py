"""The operator API's usage by period: ``group=day|month`` with ``from``/``to`` days, the days
and months of BOT_TIMEZONE (an operation at 00:30 in Moscow is the next day's, though it is
still the day before in UTC), in the OpenAPI document through the same pydantic models."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update

from billing import accounts, operations
from billing.models import Operation
from tests.web.conftest import Stack
from tests.web.test_operator_api import READ, USER, api, assert_problem, call, new_user

__all__ = ["api"]  # the fixture

MADE_AT = (
    datetime(2026, 11, 30, 20, 30, tzinfo=UTC),  # 23:30 on 30 Nov in Moscow
    datetime(2026, 11, 30, 21, 30, tzinfo=UTC),  # 00:30 on 1 Dec in Moscow
    datetime(2026, 12, 1, 10, 0, tzinfo=UTC),
)


async def _three_operations(api: Stack) -> None:
    user_id = await new_user(api)
    async with api.sessionmaker() as session:
        await accounts.adjust(session, user_id=user_id, amount=5_000, reason="test money")
        await session.commit()
    for moment in MADE_AT:
        async with api.sessionmaker() as session:
            charged = await operations.charge(
                session, api.settings, user_id=user_id, op_type="upscale"
            )
            await session.execute(
                update(Operation)
                .where(Operation.id == charged.operation_id)
                .values(created_at=moment)
            )
            await session.commit()


async def _usage(api: Stack, **params: str) -> dict:
    status, body, _ = await call(api, "GET", f"/users/{USER}/usage", headers=READ, params=params)
    assert status == 200, body
    return body


async def test_usage_by_day_and_by_month_in_the_bot_timezone(api: Stack) -> None:
    assert api.settings.BOT_TIMEZONE == "Europe/Moscow"
    await _three_operations(api)
    days = await _usage(api, group="day", **{"from": "2026-11-30", "to": "2026-12-01"})
    assert (days["group"], days["timezone"]) == ("day", "Europe/Moscow")
    assert days["since"].startswith("2026-11-29T21:00:00")  # Moscow's midnight
    assert days["until"].startswith("2026-12-01T21:00:00")
    assert [(i["period"], i["type"], i["source"], i["operations"]) for i in days["items"]] == [
        ("2026-11-30", "upscale", "balance", 1),
        ("2026-12-01", "upscale", "balance", 2),
    ]
    assert days["items"][1]["charged_kopecks"] == 2_000
    months = await _usage(api, group="month", **{"from": "2026-11-01", "to": "2026-12-31"})
    assert [(i["period"], i["operations"]) for i in months["items"]] == [
        ("2026-11", 1),
        ("2026-12", 2),
    ]
    # One day only, not grouped: the two of 1 December in Moscow.
    one = await _usage(api, **{"from": "2026-12-01", "to": "2026-12-01"})
    assert [(i["period"], i["operations"]) for i in one["items"]] == [(None, 2)]
    # Days and instants together: the period both bound (here the last one alone).
    both = await _usage(api, since="2026-12-01T09:00:00Z", **{"from": "2026-11-30"})
    assert [(i["period"], i["operations"]) for i in both["items"]] == [(None, 1)]


async def test_usage_periods_are_checked_and_documented(api: Stack) -> None:
    await new_user(api)
    for params in (
        {"group": "week"},
        {"from": "2026-12-1"},
    ):
        status, body, headers = await call(
            api, "GET", f"/users/{USER}/usage", headers=READ, params=params
        )
        assert_problem(status, body, headers, 422)
    # The far ends of the calendar are answered, not a server error.
    assert (await _usage(api, **{"from": "0001-01-01", "to": "9999-12-31"}))["items"] == []
    async with api.http.get(api.url + "/api/v1/openapi.json") as resp:
        document = await resp.json()
    parameters = {
        p["name"]: p
        for p in document["paths"]["/api/v1/users/{telegram_id}/usage"]["get"]["parameters"]
    }
    assert {"from", "to", "group"} <= set(parameters)
    assert parameters["from"]["schema"]["format"] == "date"
    group = document["components"]["schemas"]["UsageGroup"]
    assert group["enum"] == ["day", "month"]
    assert "period" in document["components"]["schemas"]["UsageItem"]["properties"]
