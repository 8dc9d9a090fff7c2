"""The operator API (``/api/v1``, issue 17): seed 004's balance, usage, limits, features and
top-up per user, the plans and the payments, for an operator's own tools.

:func:`mount` adds it to the web server as a sub-application: its middleware answers every
error, aiohttp's own included, as an RFC 9457 problem document.
"""

from __future__ import annotations

import logging

from aiohttp import web

from billing.settings import Settings
from web.api.endpoints import endpoints, serve
from web.api.openapi import PREFIX, document_text
from web.api.problems import ApiProblem, from_http_error, from_problem, problem_response

__all__ = ["PREFIX", "mount"]

log = logging.getLogger(__name__)


@web.middleware
async def problems(request: web.Request, handler) -> web.StreamResponse:  # type: ignore[no-untyped-def]
    try:
        return await handler(request)
    except ApiProblem as problem:
        return from_problem(request, problem)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return from_http_error(request, exc)
    except Exception:
        log.exception("operator API: unhandled error on %s %s", request.method, request.path[:200])
        return problem_response(
            request,
            500,
            type_="about:blank",
            title="Internal Server Error",
            detail="the request failed on the server; nothing is known to have changed",
        )


def mount(app: web.Application, settings: Settings) -> None:
    """Add /api/v1 to the web server's application (before it starts)."""
    api = web.Application(middlewares=[problems])
    table = endpoints(settings)
    for endpoint in table:
        api.router.add_route(endpoint.method, endpoint.path, serve(endpoint))
    text = document_text(table)

    async def openapi(_: web.Request) -> web.Response:
        return web.Response(text=text, content_type="application/json")

    api.router.add_route("GET", "/openapi.json", openapi)
    app.add_subapp(PREFIX, api)
