"""``python -m workers`` with the job Bot made and closed through aiogram's public API only.

bench/jobs.py runs it beside the real worker, on a queue of its own, to measure in the same
run what the two private-attribute tweaks of :mod:`workers.runtime` buy (the copied
``AiohttpSession`` prototype, and the close without aiogram's 250 ms pause).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiogram import Bot  # noqa: E402

from billing.settings import Settings  # noqa: E402
from tg.factory import make_bot  # noqa: E402
from workers import runtime  # noqa: E402
from workers.__main__ import main  # noqa: E402


def make_job_bot(settings: Settings) -> Bot:
    return make_bot(settings)  # a new AiohttpSession: a new TLS context per job


async def close_job_bot(bot: Bot) -> None:
    await bot.session.close()  # aiogram's own close, with its 250 ms pause


runtime.make_job_bot = make_job_bot
runtime.close_job_bot = close_job_bot

if __name__ == "__main__":
    raise SystemExit(main())
