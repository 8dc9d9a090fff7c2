"""The bot process loads neither OpenCV nor numpy (issue 13): every module of the bot
package, its composition root included, is imported in a fresh interpreter and
sys.modules is read. The import-linter contract "bot-light" checks the static imports;
this checks what really loads, lazy and indirect imports included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import importlib, json, pkgutil, sys
import bot, bot.__main__, bot.app
for info in pkgutil.walk_packages(bot.__path__, "bot."):
    importlib.import_module(info.name)
print(json.dumps(sorted(m for m in ("cv2", "numpy") if m in sys.modules)))
"""


def test_importing_the_bot_loads_neither_cv2_nor_numpy() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
