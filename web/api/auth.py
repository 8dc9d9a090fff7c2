"""Who calls the operator API: bearer tokens from API_TOKENS, each with a name and a scope,
and a rate limit per token.

A secret is compared in constant time against every token (the time does not tell which
one, nor how much of a guess was right) and never logged; a refusal logs the peer and why.
The rate limit is a fixed one-minute window per token name in Redis; Redis only helps: when
it does not answer, the request goes on (logged) rather than the API going down with it.
"""

from __future__ import annotations

import hmac
import logging
import math
import time

from aiohttp import web
from redis.exceptions import RedisError

from billing.settings import ApiToken, Settings
from web.api.problems import ApiProblem
from web.keys import REDIS

log = logging.getLogger(__name__)

RATE_WINDOW_SECONDS = 60
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="media-lab-api"'}


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def find_token(settings: Settings, given: str) -> ApiToken | None:
    """The token whose secret is ``given``: every token is compared, in constant time."""
    found = None
    given_bytes = given.encode("utf-8", "surrogateescape")
    for token in settings.api_tokens:
        if hmac.compare_digest(given_bytes, token.secret.encode()):
            found = token
    return found


def authenticate(request: web.Request, settings: Settings, scope: str) -> ApiToken:
    """The caller's token, allowed ``scope`` (a write token may read); else 401 / 403."""
    given = _bearer(request)
    token = find_token(settings, given) if given else None
    if token is None:
        why = "no bearer token" if given is None else "not a valid token"
        log.warning(
            "operator API refused (401): %s; %s %s, peer %s",
            why,
            request.method,
            request.path[:200],
            request.remote,
        )
        raise ApiProblem(
            401,
            "unauthorized",
            "Unauthorized",
            "send a valid token: Authorization: Bearer <token> (API_TOKENS)",
            headers=CHALLENGE,
        )
    if scope == "write" and token.scope != "write":
        log.warning(
            "operator API refused (403): token %r is read-only; %s %s",
            token.name,
            request.method,
            request.path[:200],
        )
        raise ApiProblem(403, "forbidden", "Forbidden", f"the token {token.name!r} may only read")
    return token


async def check_rate(request: web.Request, settings: Settings, token: ApiToken) -> None:
    """At most API_RATE_LIMIT_PER_MINUTE requests per token and minute; past it, 429 with
    Retry-After (the seconds to the next window)."""
    now = time.time()
    window = int(now // RATE_WINDOW_SECONDS)
    key = f"api:rate:{token.name}:{window}"  # the token's name, never its secret
    try:
        async with request.config_dict[REDIS].pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, RATE_WINDOW_SECONDS * 2)
            count, _ = await pipe.execute()
    except (RedisError, OSError) as exc:
        log.warning("operator API rate limit not checked (Redis: %s)", type(exc).__name__)
        return
    if int(count) > settings.API_RATE_LIMIT_PER_MINUTE:
        retry = max(1, math.ceil((window + 1) * RATE_WINDOW_SECONDS - now))
        log.warning("operator API refused (429): token %r past its rate limit", token.name)
        raise ApiProblem(
            429,
            "rate-limited",
            "Too Many Requests",
            f"at most {settings.API_RATE_LIMIT_PER_MINUTE} requests a minute per token "
            f"(API_RATE_LIMIT_PER_MINUTE); try again in {retry} s",
            headers={"Retry-After": str(retry)},
        )
