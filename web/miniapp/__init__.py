"""The Mini App (issue 17): plain static pages at ``/app/`` (HTML, one small script, one
style sheet; no build step) and their JSON endpoints at ``/app/api/…`` (``api``), each call
authenticated by Telegram's init data (``auth``)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from web.miniapp.api import add_routes

STATIC = Path(__file__).resolve().parent / "static"


async def index(_: web.Request) -> web.FileResponse:
    # Telegram caches a Mini App's page hard; the page is small, so it is never cached and a
    # new deploy is seen at once (the script and the style sheet are revalidated, see below).
    response = web.FileResponse(STATIC / "index.html")
    response.headers["Cache-Control"] = "no-cache"
    return response


async def app_slash(_: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect("/app/")


def mount(app: web.Application) -> None:
    """The pages and their API on the web server's application."""
    app.router.add_get("/app", app_slash)
    app.router.add_get("/app/", index)
    app.router.add_static("/app/static/", STATIC, append_version=False)
    add_routes(app)
