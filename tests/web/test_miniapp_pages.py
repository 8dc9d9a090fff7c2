"""The Mini App's pages are plain files served by the web server at /app/ (no build step)."""

from __future__ import annotations

from tests.web.conftest import Stack
from web.miniapp import STATIC


async def test_the_page_its_script_and_its_style_are_served(stack: Stack) -> None:
    async with stack.http.get(stack.url + "/app/") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        assert resp.headers["Cache-Control"] == "no-cache"
        page = await resp.text()
    assert '<script src="/app/static/app.js" defer>' in page
    # The style sheet is in the page (no second request before the first paint).
    style = (STATIC / "app.css").read_text(encoding="utf-8")
    assert f"<style>\n{style}</style>" in page and "app.css" not in page
    for path, kind in (("/app/static/app.js", "javascript"), ("/app/static/app.css", "css")):
        async with stack.http.get(stack.url + path) as resp:
            assert resp.status == 200 and kind in resp.content_type, path
    async with stack.http.get(stack.url + "/app", allow_redirects=False) as resp:
        assert (resp.status, resp.headers["Location"]) == (308, "/app/")
    async with stack.http.get(stack.url + "/app/static/../../app.py") as resp:
        assert resp.status in (403, 404)
