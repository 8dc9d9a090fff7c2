"""The browser chat page of the sandbox: talk to the bot as in Telegram, with no account.

``attach(app, ...)`` adds the page to the Telegram Bot API emulator's aiohttp application
(``sandbox.telegram.create_app()``), so the page and the emulator's control API (``/_emu/...``)
share one origin and the page's JavaScript calls the control API directly:

- ``GET /`` redirects to ``/chat``; ``GET /chat`` is the page, ``/chat/static/*`` its script
  and style sheet (no external CDNs: it works with no internet);
- ``GET /chat/config`` tells the page who it talks as (``user_id``, ``first_name``,
  ``language``; the page's URL may override them with ``?user=&name=&lang=``), the bot's
  name and what the sandbox runs (``info``: web server URL, emulated or real YooKassa, fake
  or real image generator).

The page itself (``static/app.js``) sends text, photos, albums and images as documents
through ``POST /_emu/send_message`` and ``/_emu/send_photo``, presses inline buttons through
``POST /_emu/press``, follows the chat with the long poll ``GET /_emu/chats/{id}/changes``
(new messages, edits, deletions, callback answers), shows photos and documents from
``GET /_emu/files/{file_id}``, and opens URL buttons (the payment link) in a new tab. A Stars
invoice is a card whose ⭐ Pay button calls ``POST /_emu/pay`` (the bot's pre-checkout, then
successful_payment, as in Telegram); the header shows the user's ⭐ balance (from the chat's
changes, ``GET /_emu/stars``) and gives Stars with ``POST /_emu/stars {add}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

STATIC = Path(__file__).resolve().parent / "static"
CONFIG_KEY: web.AppKey[dict[str, Any]] = web.AppKey("chatpage_config", dict)
NO_CACHE = {"Cache-Control": "no-store"}


async def _index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html", headers=NO_CACHE)


async def _root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/chat")


async def _config(request: web.Request) -> web.StreamResponse:
    from sandbox.telegram import EMU_KEY

    config = dict(request.app[CONFIG_KEY])
    emu = request.app.get(EMU_KEY)
    bot = emu.default_bot if emu is not None else None
    config["bot"] = (
        {"first_name": bot.first_name, "username": bot.username, "bound": bot.bound}
        if bot is not None
        else {"first_name": "Media Lab", "username": None, "bound": False}
    )
    return web.json_response(config, headers=NO_CACHE)


def attach(
    app: web.Application,
    *,
    user_id: int = 1001,
    first_name: str = "Гость",
    language: str = "ru",
    info: dict[str, Any] | None = None,
) -> web.Application:
    """Serve the chat page from ``app`` (the Telegram emulator's application)."""
    app[CONFIG_KEY] = {
        "user": {"id": user_id, "first_name": first_name, "language": language},
        "info": dict(info or {}),
    }
    app.router.add_get("/", _root)
    app.router.add_get("/chat", _index)
    app.router.add_get("/chat/config", _config)
    app.router.add_static("/chat/static", STATIC, append_version=True)
    return app
