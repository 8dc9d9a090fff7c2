"""Who is calling: the Telegram WebApp init data the page sends with every API call.

Telegram signs the init data with the bot token when the Mini App opens (HMAC-SHA256, key
``HMAC_SHA256("WebAppData", bot_token)``) and the page sends it unchanged with each call, in
``Authorization: tma <initData>``. aiogram's ``safe_parse_webapp_init_data`` checks the hash.

"Replayed" here means: presented after its maximum age. Telegram reuses one init data for the
whole session of the app, so the same init data sent again within
WEBAPP_INIT_MAX_AGE_SECONDS of its ``auth_date`` is the normal case and accepted; once older
(or dated in the future past a small clock skew) it is refused, whoever sends it. A refusal is
a 401 and a log line that names the reason and the peer, never the data (it is a bearer
credential for its lifetime).

The account is the one of the signed user id; nothing in a path or a query names a user.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from aiogram.utils.web_app import WebAppInitData, safe_parse_webapp_init_data
from aiohttp import web

log = logging.getLogger(__name__)

SCHEME = "tma"
MAX_INIT_DATA_CHARS = 8192  # Telegram's are well under 1 KB; a bigger one is not theirs
FUTURE_SKEW_SECONDS = 60  # an auth_date this far ahead of our clock is still believed


class InitDataRefused(Exception):
    """The init data is missing, forged, too old or from the future; ``reason`` says which
    (for the log, never the data itself)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Caller:
    """The Telegram user the init data names."""

    telegram_id: int
    username: str | None
    language_code: str | None


def check_init_data(
    token: str, init_data: str, *, max_age: float, now: float | None = None
) -> WebAppInitData:
    """The parsed init data, if Telegram signed it with ``token`` and its ``auth_date`` is
    at most ``max_age`` seconds old. Raises :class:`InitDataRefused`."""
    if not init_data or len(init_data) > MAX_INIT_DATA_CHARS:
        raise InitDataRefused("no init data" if not init_data else "init data too long")
    try:
        data = safe_parse_webapp_init_data(token=token, init_data=init_data)
    except ValueError:  # a wrong hash, no hash, or a signed body that is not init data
        raise InitDataRefused("bad signature") from None
    if data.user is None:
        raise InitDataRefused("no user in init data")
    age = (time.time() if now is None else now) - data.auth_date.timestamp()
    if age > max_age:
        raise InitDataRefused(f"stale init data ({int(age)} s old, max {int(max_age)} s)")
    if age < -FUTURE_SKEW_SECONDS:
        raise InitDataRefused("init data dated in the future")
    return data


def caller_of(request: web.Request, token: str, max_age: float) -> Caller:
    """The caller of ``request`` from its ``Authorization: tma …`` header; a refusal is
    logged (the reason, the method, the route, the peer) and raised as a 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    try:
        if scheme.lower() != SCHEME:
            raise InitDataRefused("no tma authorization header")
        data = check_init_data(token, value.strip(), max_age=max_age)
    except InitDataRefused as exc:
        route = request.match_info.route.resource
        log.warning(
            "Mini App call refused (401): %s; %s %s, peer %s",
            exc.reason,
            request.method,
            route.canonical if route is not None else "?",
            request.remote,
        )
        raise web.HTTPUnauthorized(
            text='{"error": "unauthorized"}', content_type="application/json"
        ) from None
    user = data.user
    assert user is not None  # checked above
    return Caller(telegram_id=user.id, username=user.username, language_code=user.language_code)
