"""Health and metrics routes: /healthz, /yookassa/health, /metrics.

``/yookassa/health?check=1`` asks the YooKassa API with the shop's credentials, so it must
not be a lever anyone can pull: a fresh check needs the operator's token
(``HEALTH_CHECK_TOKEN``, sent as ``Authorization: Bearer <token>``), its answer is kept for
``API_CHECK_TTL`` seconds, and at most one check is in flight (requests that come meanwhile
wait for it and share its answer). Without a token the route answers the last check's result
and its age, or that no check was made yet; a token that does not match is a 401. Without
``HEALTH_CHECK_TOKEN`` no fresh check is ever made from the outside.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from web.keys import API_CHECK, METRICS, REDIS, SESSIONMAKER, SETTINGS

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 3.0
API_CHECK_TTL = 30.0  # seconds a YooKassa API check's answer is reused


@dataclass(frozen=True)
class ApiCheckResult:
    reachable: bool
    at: float  # the check's clock reading when it ended


class ApiCheck:
    """The YooKassa API check, cached for ``ttl`` seconds, one in flight at a time."""

    def __init__(
        self,
        probe: Callable[[], Awaitable[bool]],
        *,
        ttl: float = API_CHECK_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.probe = probe
        self.ttl = ttl
        self.clock = clock
        self.last: ApiCheckResult | None = None
        self._running: asyncio.Task[ApiCheckResult] | None = None

    def age(self, result: ApiCheckResult) -> float:
        return max(0.0, self.clock() - result.at)

    async def fresh(self) -> ApiCheckResult:
        """The last answer if younger than ``ttl``, else the one of the check in flight (one
        is started if none is)."""
        if self.last is not None and self.age(self.last) < self.ttl:
            return self.last
        if self._running is None:
            self._running = asyncio.create_task(self._run(), name="yookassa-api-check")
        # Shielded: a client that hangs up does not cancel the check the others wait for.
        return await asyncio.shield(self._running)

    async def _run(self) -> ApiCheckResult:
        try:
            reachable = await self.probe()
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
            log.warning("yookassa health: ping failed: %s", type(exc).__name__)
            reachable = False
        finally:
            self._running = None
        self.last = ApiCheckResult(reachable, self.clock())
        return self.last

    async def close(self) -> None:
        task = self._running
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def _check(name: str, probe) -> dict[str, object]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await probe()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        log.warning("healthz: %s not reachable: %s", name, type(exc).__name__)
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}


async def healthz(request: web.Request) -> web.Response:
    """The database answers SELECT 1 and Redis answers PING (docker compose healthcheck)."""
    sessionmaker, redis = request.app[SESSIONMAKER], request.app[REDIS]

    async def database() -> None:
        async with sessionmaker() as session:
            await session.execute(text("SELECT 1"))

    async def cache() -> None:
        if not await redis.ping():
            raise ConnectionError("PING refused")

    db, rd = await asyncio.gather(_check("database", database), _check("redis", cache))
    ok = bool(db["ok"] and rd["ok"])
    return web.json_response(
        {"status": "ok" if ok else "unavailable", "database": db, "redis": rd},
        status=200 if ok else 503,
    )


def _bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header; "" for any other header."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _token_matches(given: str, settings_token: str | None) -> bool:
    if not settings_token or not given:
        return False
    # Constant time: the comparison does not tell how much of a guess was right.
    return hmac.compare_digest(given.encode(), settings_token.encode())


async def yookassa_health(request: web.Request) -> web.Response:
    """Whether YooKassa credentials are configured; with ``?check=1``, whether the API
    answers (fresh with the operator's token, else the last check's answer)."""
    settings = request.app[SETTINGS]
    body: dict[str, object] = {"configured": settings.yookassa_configured}
    ok = settings.yookassa_configured
    if request.query.get("check", "").lower() in ("1", "true", "yes"):
        given = _bearer_token(request)
        expected = (
            settings.HEALTH_CHECK_TOKEN.get_secret_value() if settings.HEALTH_CHECK_TOKEN else None
        )
        check = request.app[API_CHECK]
        if given is not None and not _token_matches(given, expected):
            log.warning(
                "yookassa health check refused (401): %s; peer %s",
                "HEALTH_CHECK_TOKEN is not set" if not expected else "wrong token",
                request.remote,
            )
            return web.json_response(
                {"status": "unauthorized"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="yookassa-health"'},
            )
        result: ApiCheckResult | None
        if given is not None and ok:
            result = await check.fresh()
        else:
            result = check.last  # anonymous: never a call to YooKassa
        if result is None:
            body["api"] = "not_checked" if ok else "unreachable"
            if ok:
                body["detail"] = "a fresh check needs the operator token"
        else:
            body["api"] = "ok" if result.reachable else "unreachable"
            body["checked_seconds_ago"] = round(check.age(result), 1)
            ok = ok and result.reachable
    body["status"] = "ok" if ok else "unavailable"
    return web.json_response(body, status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    payload = await request.app[METRICS].render(request.app[SESSIONMAKER])
    response = web.Response(body=payload)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
