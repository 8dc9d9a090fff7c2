"""Typed keys of the web application's state (``app[SETTINGS]``, ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing.settings import Settings

if TYPE_CHECKING:
    from aiogram import Bot
    from redis.asyncio import Redis

    from billing.yookassa import YooKassaGateway
    from imaging.fal_webhook import Jwks
    from web.fal_webhook import DeliveryQueue
    from web.health import ApiCheck
    from web.metrics import WebMetrics
    from web.notify import UserNotifier
    from web.security import SenderPolicy

SETTINGS = web.AppKey("settings", Settings)
SESSIONMAKER: web.AppKey[async_sessionmaker[AsyncSession]] = web.AppKey("sessionmaker")
REDIS: web.AppKey[Redis] = web.AppKey("redis")
BOT: web.AppKey[Bot] = web.AppKey("bot")
GATEWAY: web.AppKey[YooKassaGateway] = web.AppKey("gateway")
METRICS: web.AppKey[WebMetrics] = web.AppKey("metrics")
NOTIFIER: web.AppKey[UserNotifier] = web.AppKey("notifier")
SENDERS: web.AppKey[SenderPolicy] = web.AppKey("senders")
API_CHECK: web.AppKey[ApiCheck] = web.AppKey("api_check")
FAL_JWKS: web.AppKey[Jwks] = web.AppKey("fal_jwks")
FAL_DELIVERIES: web.AppKey[DeliveryQueue] = web.AppKey("fal_deliveries")
