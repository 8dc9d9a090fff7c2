"""The dispatcher, built the same way for long polling (python -m bot), the webhook
(web/ mounts it with aiogram's SimpleRequestHandler) and the tests."""

from __future__ import annotations

from aiogram import Bot, Dispatcher
from aiogram.fsm.storage.base import DefaultKeyBuilder
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.types import BotCommand, BotCommandScopeDefault
from redis import Redis as SyncRedis
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing.settings import Settings
from billing.yookassa import YooKassaGateway
from bot.isolation import OrderedEventIsolation
from bot.keyboards import webapp_menu_button
from bot.middlewares import (
    DbSessionMiddleware,
    I18nMiddleware,
    IdBoundsMiddleware,
    ThrottlingMiddleware,
)
from bot.routers import (
    admin,
    admin_models,
    fallback,
    modes,
    plans,
    result_file,
    stars,
    start,
    support,
    topup,
)
from jobqueue.queue import media_queue
from texts.i18n import DEFAULT_LANGUAGE, SUPPORTED, t

FSM_TTL_SECONDS = 7 * 24 * 3600  # a mode or a half-typed amount is forgotten after a week
COMMANDS = (
    "start",
    "help",
    "balance",
    "plans",
    "history",
    "settings",
    "menu",
    "paysupport",
    "privacy",
)


def make_redis(settings: Settings, *, max_connections: int = 64) -> Redis:
    """The bot's asyncio Redis client (FSM state, the per-user event lock, throttling).

    A blocking pool: a burst of updates waits for a free connection. redis-py's default
    pool raises "Too many connections" at the 101st connection in use, which failed
    updates (and refunded their fresh charges) with 200 users at once in bench/load.py.
    Commands that meet a dropped connection are retried on a new one.
    """
    pool = BlockingConnectionPool.from_url(
        settings.REDIS_URL,
        max_connections=max_connections,
        timeout=20,
        socket_connect_timeout=5,
        health_check_interval=30,
        # A connection pooled before a Redis restart fails once when next drawn: reconnect
        # and send the command again (a pool given to the client brings no retry policy
        # of its own, so without this every stale connection failed an update).
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    return Redis.from_pool(pool)


def make_queue(settings: Settings) -> Queue:
    """The RQ queue on a synchronous Redis client with short timeouts, so an unreachable
    Redis fails the enqueue quickly (and the charge is reversed) instead of hanging."""
    connection = SyncRedis.from_url(
        settings.REDIS_URL, socket_connect_timeout=3, socket_timeout=5, retry_on_timeout=False
    )
    return media_queue(connection, settings)


def build_dispatcher(
    *,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    gateway: YooKassaGateway | None = None,
    queue: Queue | None = None,
) -> Dispatcher:
    """The bot's dispatcher.

    ``redis`` (asyncio) keeps the FSM state (so a restart keeps a half-finished mode or
    amount), the per-user event lock (so an album's photos are handled one after another
    on any number of replicas, in the order they came on each: ``bot/isolation.py``) and
    the throttling buckets. ``queue`` is the RQ queue the media jobs go to (default:
    settings.RQ_QUEUE on settings.REDIS_URL). ``gateway`` is None when YooKassa is not
    configured: top-ups are then not offered.
    """
    storage = RedisStorage(
        redis,
        key_builder=DefaultKeyBuilder(prefix="fsm"),
        state_ttl=FSM_TTL_SECONDS,
        data_ttl=FSM_TTL_SECONDS,
    )
    dispatcher = Dispatcher(
        storage=storage,
        events_isolation=OrderedEventIsolation(storage.create_isolation()),
        settings=settings,
        sessionmaker=sessionmaker,
        redis=redis,
        # PAYMENT_METHODS without "yookassa": no card payment is offered, even if configured.
        gateway=gateway if "yookassa" in settings.PAYMENT_METHODS else None,
        queue=queue if queue is not None else make_queue(settings),
    )
    dispatcher.update.outer_middleware(IdBoundsMiddleware())  # first: before any query
    dispatcher.update.outer_middleware(I18nMiddleware())
    dispatcher.update.outer_middleware(ThrottlingMiddleware(redis, settings))
    dispatcher.update.outer_middleware(DbSessionMiddleware(sessionmaker))
    dispatcher.include_routers(
        admin.create_router(),  # first: its filter sees admins' commands before the modes
        admin_models.create_router(),
        start.create_router(),
        stars.create_router(),  # before support and the modes: a payment is a payment
        support.create_router(),
        topup.create_router(),
        plans.create_router(),
        modes.create_router(),
        result_file.create_router(),
        fallback.create_router(),
    )
    return dispatcher


def bot_commands(lang: str) -> list[BotCommand]:
    return [BotCommand(command=c, description=t(f"bot-cmd-{c}", lang)) for c in COMMANDS]


async def set_commands(bot: Bot, webapp_url: str | None = None) -> None:
    """setMyCommands: Russian for everyone, English for English-speaking users; with
    WEBAPP_URL, the menu button opens the Mini App (setChatMenuButton for every chat, in
    Russian: Telegram keeps one default; /start gives another language's user a button of
    their own, ``bot.keyboards.chat_menu_button``)."""
    if webapp_url:
        button = webapp_menu_button(DEFAULT_LANGUAGE, webapp_url)
        await bot.set_chat_menu_button(menu_button=button)
    await bot.set_my_commands(bot_commands(DEFAULT_LANGUAGE), scope=BotCommandScopeDefault())
    for lang in SUPPORTED:
        if lang != DEFAULT_LANGUAGE:
            await bot.set_my_commands(
                bot_commands(lang), scope=BotCommandScopeDefault(), language_code=lang
            )
