"""Health and metrics routes: /healthz, /yookassa/health, /metrics."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from web.keys import GATEWAY, METRICS, REDIS, SESSIONMAKER, SETTINGS

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 3.0


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


async def yookassa_health(request: web.Request) -> web.Response:
    """Whether YooKassa credentials are configured; with ``?check=1``, whether the API answers."""
    settings = request.app[SETTINGS]
    body: dict[str, object] = {"configured": settings.yookassa_configured}
    ok = settings.yookassa_configured
    if request.query.get("check", "").lower() in ("1", "true", "yes"):
        reachable = False
        if ok:
            try:
                reachable = await request.app[GATEWAY].ping()
            except Exception as exc:  # noqa: BLE001
                log.warning("yookassa health: ping failed: %s", type(exc).__name__)
        body["api"] = "ok" if reachable else "unreachable"
        ok = ok and reachable
    body["status"] = "ok" if ok else "unavailable"
    return web.json_response(body, status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    payload = await request.app[METRICS].render(request.app[SESSIONMAKER])
    response = web.Response(body=payload)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
