"""The Mini App (issue 17): plain static pages at ``/app/`` (HTML, one small script, one
style sheet; no build step) and their JSON endpoints at ``/app/api/…`` (``api``), each call
authenticated by Telegram's init data (``auth``).

The style sheet is put into the page when the server starts (``<style>``): a page with a
linked sheet cannot paint before a second request comes back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from web.miniapp.api import add_routes

STATIC = Path(__file__).resolve().parent / "static"
STYLE_LINK = '<link rel="stylesheet" href="/app/static/app.css">'


def page() -> bytes:
    """index.html with app.css in it (read from the files, once per server)."""
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    style = (STATIC / "app.css").read_text(encoding="utf-8")
    assert STYLE_LINK in html, "index.html links app.css"
    return html.replace(STYLE_LINK, f"<style>\n{style}</style>").encode()


def index_handler() -> Any:
    body = page()

    async def index(_: web.Request) -> web.Response:
        # Telegram caches a Mini App's page hard; the page is small, so it is never cached
        # and a new deploy is seen at once (the script is revalidated, see below).
        return web.Response(
            body=body,
            content_type="text/html",
            charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    return index


async def app_slash(_: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect("/app/")


def mount(app: web.Application) -> None:
    """The pages and their API on the web server's application."""
    app.router.add_get("/app", app_slash)
    app.router.add_get("/app/", index_handler())
    app.router.add_static("/app/static/", STATIC, append_version=False)
    add_routes(app)
