"""`python -m web`: the aiohttp server on WEB_HOST:WEB_PORT (YooKassa, health, metrics,
and Telegram updates when TELEGRAM_WEBHOOK_URL is set)."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from billing import redaction
from billing.heap import freeze_startup_heap
from billing.settings import load_settings
from texts import wallet_texts
from web.app import create_app

# The YooKassa SDK is synchronous and runs in the loop's default executor (billing/yookassa.py,
# asyncio.to_thread). Its default size, cpu_count + 4, would queue notifications behind each
# other under a burst; the calls are I/O-bound, so more threads cost little.
SDK_THREADS = 32


async def _freeze_startup_heap(_: web.Application) -> None:
    freeze_startup_heap()  # last of the startup hooks, after the warm-up


async def _sdk_threads(_: web.Application) -> None:
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=SDK_THREADS, thread_name_prefix="yookassa")
    )


def main() -> None:
    settings = load_settings()
    logging.basicConfig(
        level=settings.LOG_LEVEL.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    redaction.install(settings)
    wallet_texts.use_timezone(settings.zone)  # the dates users see
    app = create_app(settings)
    app.on_startup.insert(0, _sdk_threads)
    app.on_startup.append(_freeze_startup_heap)
    web.run_app(
        app,
        host=settings.WEB_HOST,
        port=settings.WEB_PORT,
        access_log=None,
        shutdown_timeout=15.0,
    )


if __name__ == "__main__":
    main()
