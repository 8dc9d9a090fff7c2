"""The web server's application factory: YooKassa notifications, health, metrics, Telegram.

``create_app(settings)`` builds whatever it is not given (engine and sessionmaker, Redis, the
Bot, the YooKassa gateway, in Telegram webhook mode the Dispatcher) and closes on cleanup
exactly what it built (and, in webhook mode, the Bot, as aiogram's handler always did); tests
pass their own.

Telegram webhook mode never keeps the server from starting: setWebhook and setMyCommands are
tried in background tasks until Telegram takes them (startup waits a few seconds for the
webhook, then listens anyway), so an unreachable Telegram cannot take the YooKassa route down.
Updates are handled before they are answered (``handle_in_background=False``): an update cut by
a restart, or failing past the bot's error handler (bot/routers/fallback.py), gets no 200 and
Telegram delivers it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiogram.client.session.middlewares.base import NextRequestMiddlewareType
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from billing.db import make_engine, make_sessionmaker
from billing.settings import Settings
from billing.yookassa import YooKassaGateway
from imaging.fal_webhook import Jwks
from tg.factory import make_bot
from tg.response_models import PinResponseModels
from tg.retry import RetryPolicy, RetryRequests, retry_call
from web import api, fal_webhook, health
from web.keys import (
    API_CHECK,
    BOT,
    FAL_DELIVERIES,
    FAL_JWKS,
    GATEWAY,
    METRICS,
    NOTIFIER,
    REDIS,
    SENDERS,
    SESSIONMAKER,
    SETTINGS,
)
from web.metrics import WebMetrics
from web.miniapp import mount as mount_miniapp
from web.notify import UserNotifier, warm_up_telegram_models
from web.security import SenderPolicy
from web.yookassa_webhook import yookassa_webhook

if TYPE_CHECKING:
    from aiogram import Bot, Dispatcher
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/yookassa/webhook"
DB_PING_IDLE_AFTER = 10.0  # seconds
DB_POOL = 20  # connections, the most the web server opens
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Telegram webhook mode: seconds between attempts at setWebhook / setMyCommands (the last one
# repeats), and how long startup waits for the webhook before listening anyway.
TELEGRAM_SETUP_BACKOFF: tuple[float, ...] = (1.0, 2.0, 5.0, 15.0, 60.0)
TELEGRAM_SETUP_WAIT = 5.0
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_LOGGED_PATH = 200  # characters of a refused request's path in the log

# True while this task handles a Telegram update (and in the tasks it starts).
_handling_update: ContextVar[bool] = ContextVar("handling_update", default=False)


def _route_label(request: web.Request) -> str:
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count and time every request; an unexpected error is a bare 500, never a traceback."""
    metrics = request.app[METRICS]
    route = _route_label(request)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        if status >= 400:  # no route, a wrong method: the routes' own refusals log themselves
            # A path no route has is what scanners of the internet send all day: logged, but
            # below the warnings, so they do not crowd the money's lines out of the log.
            log.log(
                logging.INFO if status == 404 else logging.WARNING,
                "request refused (%d): %s; %s %r, peer %s",
                status,
                exc.reason,
                request.method,
                request.path[:MAX_LOGGED_PATH],
                request.remote,
            )
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, route)
        return web.json_response({"status": "internal_error"}, status=500)
    finally:
        metrics.requests.labels(route, request.method, str(status)).inc()
        metrics.latency.labels(route).observe(time.perf_counter() - started)


def telegram_webhook_path(settings: Settings) -> str | None:
    if not settings.TELEGRAM_WEBHOOK_URL:
        return None
    return urlsplit(settings.TELEGRAM_WEBHOOK_URL).path or "/"


def _build_dispatcher(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    gateway: YooKassaGateway,
) -> Dispatcher:
    from bot.app import build_dispatcher  # the bot's own composition, imported only when used

    return build_dispatcher(
        settings=settings,
        sessionmaker=sessionmaker,
        redis=redis,
        gateway=gateway if settings.yookassa_configured else None,
    )


class RetryUpdateReplies(RetryRequests):
    """RetryRequests (429 / 5xx: wait and send again) for the Bot API calls made while a
    Telegram update is handled, as the long-polling bot has for all of its calls.

    The web server's other calls pass straight through: the payment messages are retried by
    the notifier itself, within its deadline (``web/notify.py``), and setWebhook /
    setMyCommands by ``keep_trying``. Retried here as well, one refusal would be sent up to
    16 times and could outlast the notifier's deadline.
    """

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[Any],
        bot: Bot,
        method: TelegramMethod[Any],
    ) -> Response[Any]:
        if not _handling_update.get():
            return await make_request(bot, method)
        return await super().__call__(make_request, bot, method)


class TelegramUpdates(SimpleRequestHandler):
    """aiogram's handler of the webhook route: logs every refusal (never the token given) and
    marks the update's context for :class:`RetryUpdateReplies`."""

    async def handle(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER)
        if not self.verify_secret(given or "", self.bot):
            log.warning(
                "Telegram update refused (401): %s; peer %s",
                "wrong secret token" if given else "no secret token",
                request.remote,
            )
            return web.Response(body="Unauthorized", status=401)
        token = _handling_update.set(True)
        try:
            return await super().handle(request)
        finally:
            _handling_update.reset(token)


async def keep_trying(what: str, call: Callable[[], Awaitable[object]]) -> None:
    """Call until it succeeds, waiting TELEGRAM_SETUP_BACKOFF (or Telegram's retry_after)
    between attempts; every failure is logged, a refusal (a wrong token, a refused URL) as
    an error, and retried too: the fix may be outside this process. Ends only by success
    or cancellation."""
    policy = RetryPolicy(
        attempts=None,
        backoff=TELEGRAM_SETUP_BACKOFF,
        max_retry_after=math.inf,
        flood_budget=math.inf,
        retry_permanent=True,
    )
    await retry_call(call, policy, what=what, logger=log)


def _mount_telegram(
    app: web.Application, settings: Settings, dispatcher: Dispatcher, bot: Bot
) -> None:
    from bot.app import set_commands

    path = telegram_webhook_path(settings)
    assert path is not None and settings.TELEGRAM_WEBHOOK_URL
    secret = (
        settings.TELEGRAM_WEBHOOK_SECRET.get_secret_value()
        if settings.TELEGRAM_WEBHOOK_SECRET
        else None
    )
    if (
        path in (WEBHOOK_PATH, "/healthz", "/metrics", "/yookassa/health", "/fal/webhook")
        or (path + "/").startswith(api.PREFIX + "/")
        or path.startswith("/app/")
    ):
        raise ValueError(f"TELEGRAM_WEBHOOK_URL path {path!r} collides with a web route")
    # Handled before answered: a failure the dispatcher does not handle is a 500 and a restart
    # cuts the connection, so Telegram delivers the update again (a re-delivery charges
    # nothing: billing/ keys the charge by chat and message). aiohttp's graceful shutdown
    # waits for the handlers in flight; in the background, they were lost (and a slow handler
    # holds one of Telegram's webhook connections, 40 by default, which also bounds how many
    # updates run at once). Not ``.register()``: it closes the bot in on_shutdown, which runs
    # before those handlers end; create_app closes it on cleanup.
    updates = TelegramUpdates(
        dispatcher=dispatcher, bot=bot, secret_token=secret, handle_in_background=False
    )
    app.router.add_post(path, updates.handle)
    setup_application(app, dispatcher, bot=bot)
    url = settings.TELEGRAM_WEBHOOK_URL

    async def set_webhook() -> None:
        await bot.set_webhook(
            url,
            secret_token=secret,
            allowed_updates=dispatcher.resolve_used_update_types(),
        )
        log.info("Telegram webhook set to %s", url)

    async def telegram_setup(_: web.Application) -> AsyncIterator[None]:
        tasks = [
            asyncio.create_task(
                keep_trying("setWebhook", set_webhook), name="telegram-set-webhook"
            ),
            asyncio.create_task(
                keep_trying("setMyCommands", lambda: set_commands(bot, settings.WEBAPP_URL)),
                name="telegram-set-commands",
            ),
        ]
        try:
            # Telegram usually answers at once, so the webhook is set before the server
            # listens; if not, the server starts anyway and the task goes on trying.
            await asyncio.wait(tasks[:1], timeout=TELEGRAM_SETUP_WAIT)
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    app.cleanup_ctx.append(telegram_setup)


def make_web_engine(url: str) -> AsyncEngine:
    """The web server's engine. Its loop always runs, so asyncpg notices connections the
    server closed; only idle ones are pinged at checkout, not every one
    (``billing.db._check_on_checkout``).

    DB_POOL connections, all of them kept: an overflow connection would be closed when
    returned and opened again by the next burst (a connect, authentication and every
    statement prepared anew).
    """
    return make_engine(url, pool_size=DB_POOL, max_overflow=0, ping_idle_after=DB_PING_IDLE_AFTER)


def create_app(
    settings: Settings,
    *,
    sessionmaker: async_sessionmaker[AsyncSession] | None = None,
    redis: Redis | None = None,
    bot: Bot | None = None,
    gateway: YooKassaGateway | None = None,
    dispatcher: Dispatcher | None = None,
) -> web.Application:
    """The aiohttp application; what is not passed in is built from settings and closed."""
    owned: list[Callable[[], Awaitable[object]]] = []
    if sessionmaker is None:
        engine = make_web_engine(settings.DATABASE_URL)
        sessionmaker = make_sessionmaker(engine)
        owned.append(engine.dispose)
    if redis is None:
        from redis.asyncio import Redis as AsyncRedis

        redis = AsyncRedis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
        owned.append(redis.aclose)
    if bot is None:
        bot = make_bot(settings)
        if settings.TELEGRAM_WEBHOOK_URL:
            # The handlers' replies: 429 / 5xx wait and are sent again, as in long polling.
            bot.session.middleware(RetryUpdateReplies())
        # Messages and, in webhook mode, the bot's own calls: no response schema rebuilt.
        bot.session.middleware(PinResponseModels())
        owned.append(bot.session.close)
    elif settings.TELEGRAM_WEBHOOK_URL:
        # aiogram's handler closed the bot it serves at shutdown; it is closed on cleanup
        # now (after the updates in flight), whoever built it.
        owned.append(bot.session.close)
    if gateway is None:
        gateway = YooKassaGateway(settings)

    app = web.Application(middlewares=[observe])
    app[SETTINGS] = settings
    app[SESSIONMAKER] = sessionmaker
    app[REDIS] = redis
    app[BOT] = bot
    app[GATEWAY] = gateway
    app[METRICS] = WebMetrics()
    app[SENDERS] = SenderPolicy.from_settings(settings)
    app[API_CHECK] = health.ApiCheck(gateway.ping)
    # Its own attempts end well within the grace period after which a worker's maintenance
    # pass sends what it did not mark sent (billing.notices).
    notifier = UserNotifier(
        bot, sessionmaker=sessionmaker, deadline=settings.PAYMENT_NOTICE_GRACE_SECONDS / 2
    )
    app[NOTIFIER] = notifier

    app.router.add_post(WEBHOOK_PATH, yookassa_webhook)
    # fal's results: verified by fal's signature, whatever the sender's address.
    app[FAL_JWKS] = Jwks(settings.FAL_JWKS_URL)
    app[FAL_DELIVERIES] = deliveries = fal_webhook.DeliveryQueue(settings)
    owned.append(lambda: asyncio.to_thread(deliveries.close))
    app.router.add_post(fal_webhook.PATH, fal_webhook.fal_webhook)
    app.router.add_get("/yookassa/health", health.yookassa_health)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/metrics", health.metrics)
    api.mount(app, settings)  # the operator API, /api/v1
    mount_miniapp(app)  # the Mini App's pages and API (/app/)

    async def warm_up(_: web.Application) -> None:
        warm_up_telegram_models()  # before the server listens: blocks no request

    app.on_startup.append(warm_up)

    async def drain_messages(_: web.Application) -> None:
        await notifier.drain()

    app.on_shutdown.append(drain_messages)

    if settings.TELEGRAM_WEBHOOK_URL:
        if dispatcher is None:
            # Its FSM storage lives on ``redis``, closed below if we built it.
            dispatcher = _build_dispatcher(settings, sessionmaker, redis, gateway)
        _mount_telegram(app, settings, dispatcher, bot)

    async def loop_lag_probe(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(app[METRICS].probe_loop_lag())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(loop_lag_probe)

    async def stop_api_check(app: web.Application) -> None:
        await app[API_CHECK].close()

    app.on_shutdown.append(stop_api_check)

    async def close_owned(_: web.Application) -> None:
        for close in reversed(owned):
            try:
                await close()
            except Exception:  # noqa: BLE001 - close the rest anyway
                log.exception("closing a resource failed")

    app.on_cleanup.append(close_owned)
    return app
