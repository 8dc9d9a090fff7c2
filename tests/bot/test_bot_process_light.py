"""What the bot process loads (issue 13), read from sys.modules of a fresh interpreter that
imports every module of the bot package, its composition root included, and builds the
YooKassa gateway as ``python -m bot`` does with credentials set. The import-linter contract
"bot-light" checks the static imports; this checks what really loads, lazy and indirect
imports included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import importlib, json, pkgutil, sys
import bot, bot.__main__, bot.app
for info in pkgutil.walk_packages(bot.__path__, "bot."):
    importlib.import_module(info.name)
from billing.settings import load_settings
from billing.yookassa import YooKassaGateway
settings = load_settings()
assert settings.yookassa_configured
YooKassaGateway(settings)
print(json.dumps(sorted(m for m in %r if m in sys.modules)))
"""

HEAVY = ("cv2", "numpy", "yookassa", "requests", "PIL")


@pytest.fixture(scope="module")
def loaded_at_idle() -> list[str]:
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": "123456:" + "A" * 35,
        "DATABASE_URL": "sqlite+aiosqlite:///:memory:",
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        "YOOKASSA_SHOP_ID": "100500",
        "YOOKASSA_SECRET_KEY": "probe",
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE % (HEAVY,)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_bot_loads_neither_cv2_nor_numpy(loaded_at_idle: list[str]) -> None:
    assert {"cv2", "numpy"}.isdisjoint(loaded_at_idle)


def test_the_idle_bot_loads_neither_the_yookassa_sdk_nor_pillow(
    loaded_at_idle: list[str],
) -> None:
    """The SDK (with requests) loads on the gateway's first call, Pillow on the first image
    header or caption check: ~14 MB of the bot's idle memory (bench/bot_memory.py)."""
    assert {"yookassa", "requests", "PIL"}.isdisjoint(loaded_at_idle)
