"""The bot process's idle memory beside aiogram's own import cost, in the same run.

Each figure is read in a fresh Python process (VmRSS of /proc/self/status):
(a) ``import aiogram, aiogram.client.session.aiohttp`` alone;
(b) the bot as ``python -m bot`` builds it before polling: settings, engine, Redis client,
    Bot with its session middlewares, the YooKassa gateway, the dispatcher with every router;
    no network is touched (no connection is opened until the first request).
The goal (issue 13): (b) at most (a) + 40 MB, and neither cv2 nor numpy loaded. Prints the
figures; asserts nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_RSS = """
def _rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
"""

AIOGRAM = (
    _RSS
    + """
import json, sys
import aiogram, aiogram.client.session.aiohttp
print(json.dumps({"rss_mb": _rss_mb(), "cv2": "cv2" in sys.modules,
                  "numpy": "numpy" in sys.modules}))
"""
)

# What bot/__main__.py's main() builds before start_polling, in the same order.
BOT = (
    _RSS
    + """
import gc, json, sys
from billing.settings import load_settings
from billing.db import make_engine, make_sessionmaker
from billing.yookassa import YooKassaGateway
from bot.app import build_dispatcher, make_redis
from tg.factory import make_bot
from tg.response_models import PinResponseModels
from tg.retry import RetryRequests

settings = load_settings()
engine = make_engine(settings.DATABASE_URL)
redis = make_redis(settings)
bot = make_bot(settings)
bot.session.middleware(RetryRequests())
bot.session.middleware(PinResponseModels())
gateway = YooKassaGateway(settings) if settings.yookassa_configured else None
dispatcher = build_dispatcher(
    settings=settings, sessionmaker=make_sessionmaker(engine), redis=redis, gateway=gateway
)
dispatcher.resolve_used_update_types()
gc.collect()
print(json.dumps({"rss_mb": _rss_mb(), "cv2": "cv2" in sys.modules,
                  "numpy": "numpy" in sys.modules}))
"""
)

# Enough settings to build the bot without a real token or database (nothing connects),
# YooKassa included, so that the gateway is built as in production.
ENV = {
    "TELEGRAM_BOT_TOKEN": "123456:" + "A" * 35,
    "DATABASE_URL": "sqlite+aiosqlite:///:memory:",
    "REDIS_URL": "redis://127.0.0.1:6379/15",
    "YOOKASSA_SHOP_ID": "100500",
    "YOOKASSA_SECRET_KEY": "bench",
}


def measure(code: str) -> dict[str, object]:
    env = {**os.environ, **ENV, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    aiogram = measure(AIOGRAM)
    bot = measure(BOT)
    diff = float(bot["rss_mb"]) - float(aiogram["rss_mb"])  # type: ignore[arg-type]
    print(f"aiogram import alone: {aiogram['rss_mb']:.1f} MB RSS")
    print(f"bot idle (dispatcher built, not polling): {bot['rss_mb']:.1f} MB RSS")
    print(f"difference: {diff:+.1f} MB (goal: at most +40 MB)")
    print(f"bot process loaded cv2: {bot['cv2']}, numpy: {bot['numpy']}")


if __name__ == "__main__":
    main()
