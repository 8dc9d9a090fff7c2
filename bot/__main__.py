"""python -m bot: the composition root of the bot process (long polling).

Settings → engine → sessionmaker → Redis → Bot → YooKassa gateway (if configured) →
dispatcher → setMyCommands → long polling. With TELEGRAM_WEBHOOK_URL set, updates arrive
through the web server (python -m web mounts the same dispatcher), so this process does
not poll.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from billing import redaction
from billing.settings import load_settings
from texts import wallet_texts

log = logging.getLogger("bot")


async def main() -> int:
    settings = load_settings()
    logging.basicConfig(
        level=settings.LOG_LEVEL.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    redaction.install(settings)
    wallet_texts.use_timezone(settings.zone)  # the dates users see
    if settings.TELEGRAM_WEBHOOK_URL:
        log.error(
            "TELEGRAM_WEBHOOK_URL is set: updates go to the web server (python -m web), "
            "which runs this dispatcher; not polling"
        )
        return 2
    # Imported after the check above: aiogram's types take seconds to import.

    from billing.db import make_engine, make_sessionmaker
    from billing.heap import freeze_startup_heap
    from billing.yookassa import YooKassaGateway
    from bot.app import build_dispatcher, make_redis, set_commands
    from tg.factory import make_bot
    from tg.response_models import PinResponseModels
    from tg.retry import RetryRequests

    engine = make_engine(settings.DATABASE_URL)
    redis = make_redis(settings)
    bot = make_bot(settings)
    bot.session.middleware(RetryRequests())  # 429 / 5xx: wait and send again, not lose it
    bot.session.middleware(PinResponseModels())  # no response schema rebuilt after a GC
    gateway = YooKassaGateway(settings) if settings.yookassa_configured else None
    if gateway is None:
        log.warning("YooKassa is not configured: top-ups are not offered")
    if not settings.fal_configured:
        log.info("FAL_KEY is not set: the generate mode is not offered")
    dispatcher = build_dispatcher(
        settings=settings,
        sessionmaker=make_sessionmaker(engine),
        redis=redis,
        gateway=gateway,
    )
    try:
        await set_commands(bot, settings.WEBAPP_URL)
        await bot.delete_webhook(drop_pending_updates=False)
        freeze_startup_heap()
        await dispatcher.start_polling(bot, allowed_updates=dispatcher.resolve_used_update_types())
    finally:
        await dispatcher.storage.close()
        await redis.aclose()
        await engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
