"""Every request the web server refuses is logged with the reason: a wrong method, a path
that is no route (the YooKassa route's own refusals: test_malformed_requests.py; forged
Telegram updates: test_telegram_webhook.py)."""

from __future__ import annotations

import pytest

from tests.web.conftest import Stack


def _refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "request refused" in r.getMessage()]


async def test_a_get_to_the_yookassa_webhook_is_405_and_logged(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    async with stack.http.get(stack.webhook_url) as resp:
        assert resp.status == 405
    [line] = _refusals(caplog)
    assert "(405)" in line and "GET '/yookassa/webhook'" in line and "peer 127.0.0.1" in line


async def test_a_path_that_is_no_route_is_404_and_logged(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    async with stack.http.post(stack.url + "/wp-login.php?pwd=hunter2", data=b"x") as resp:
        assert resp.status == 404
    [line] = _refusals(caplog)
    assert "(404)" in line and "POST '/wp-login.php'" in line
    assert "hunter2" not in line  # the query string is not logged
