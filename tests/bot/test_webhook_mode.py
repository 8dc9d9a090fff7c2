"""Webhook mode: web/ mounts the bot's own dispatcher with aiogram's SimpleRequestHandler;
the emulator delivers updates to it over HTTP and the conversation is the same."""

from __future__ import annotations

from redis.asyncio import Redis

from billing.db import make_sessionmaker
from billing.yookassa import YooKassaGateway
from bot.app import build_dispatcher, make_queue
from sandbox._common import ServerHandle, free_port
from tests.bot.conftest import BOT_TOKEN
from tests.conftest import make_settings
from tg.factory import make_bot
from web.app import create_app


async def test_the_dispatcher_answers_through_the_web_servers_telegram_webhook(
    engine, db_url: str, redis_url: str, tg_server: ServerHandle, tg, photo: bytes
) -> None:
    port = free_port()
    settings = make_settings(
        db_url,
        redis_url,
        TELEGRAM_API_URL=tg_server.url,
        BOT_TOKEN=BOT_TOKEN,
        TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram/hook",
        TELEGRAM_WEBHOOK_SECRET="webhook-secret-for-tests",
    )
    redis = Redis.from_url(redis_url)
    sessionmaker = make_sessionmaker(engine)
    bot = make_bot(settings)
    dispatcher = build_dispatcher(
        settings=settings, sessionmaker=sessionmaker, redis=redis, queue=make_queue(settings)
    )
    app = create_app(
        settings,
        sessionmaker=sessionmaker,
        redis=redis,
        bot=bot,
        gateway=YooKassaGateway(settings),
        dispatcher=dispatcher,
    )
    try:
        async with ServerHandle(app, port=port):
            info = await tg.bot_info()
            assert "/telegram/hook" in str(info)
            user = tg.user(9501)
            await user.send_text("/start")
            menu = await user.wait_for_text("Бесплатных операций: 4 из 4")
            await user.press(menu, text="✨ Ретушь")
            await user.wait_for_text("портрет")
            await user.send_photo(photo)
            await user.wait_for_text("В очереди")
    finally:
        await dispatcher.storage.close()
        await redis.aclose()
