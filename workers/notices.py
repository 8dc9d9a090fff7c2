"""The maintenance pass that sends the payment messages the web server did not get out.

The web server sends "credited" / "canceled" / "refunded" right after the commit and marks
the recorded notice done (:mod:`billing.notices`). When it crashed or restarted in between,
or Telegram stayed down through its retries, the notice stays open; this pass, run from every
worker's maintenance step next to the sweeper, sends what is still open
PAYMENT_NOTICE_GRACE_SECONDS after it was written:

1. claim it with a conditional update and commit (of two passes, one wins; the other skips);
2. send it once, in the user's current language, with the catalogue's text (tg.notices);
3. sent: mark it done. The user blocked the bot (403) or Telegram refuses the chat for good
   (400): mark it done with that outcome, never retried. A transient failure (5xx, 429,
   network, timeout): record it and end the pass — Telegram is struggling. The claim stays,
   so the notice is tried again one grace period later (one try per grace period, however
   many workers run passes); a notice still failing GIVE_UP_AFTER after it was written is
   given up, logged as an error.

A pass that dies after its claim leaves the notice claimed; one grace period later another
pass takes it over (the message may then go out twice: at least once, never lost). A live
pass never loses its claim that way: it claims nothing after half the grace period, each
claim carries the time it was made, and a send is cut off after a quarter of the grace
period, so every send ends before its claim could look abandoned.

It runs in the worker's main thread between jobs, so it is bounded: at most ``limit``
notices, one try each, at most half the grace period in all, and it stops at the first sign
of trouble. Nothing here touches a balance or the ledger.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from aiogram import Bot
from rq.exceptions import StopRequested
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing import notices
from billing.models import utcnow
from billing.settings import Settings
from texts.money_texts import claimed_notice_words
from tg.buttons import MENU_TOPUP
from tg.notices import GIVE_UP_AFTER, SEND_TIMEOUT, NoticeResult, send_claimed, send_fresh
from workers.runtime import resources

log = logging.getLogger(__name__)

# The bot's "top up" button under a notice (tg.notices puts it there;
# tests/workers/test_plan_renewal_pass.py checks it is bot.callbacks.Menu(action="topup")).
TOPUP_CALLBACK = MENU_TOPUP
__all__ = [
    "GIVE_UP_AFTER",
    "TOPUP_CALLBACK",
    "NoticeResult",
    "send_due_notices",
    "send_fresh_notices",
]


async def send_due_notices(
    sessionmaker: async_sessionmaker[AsyncSession],
    bot: Bot,
    *,
    grace: timedelta,
    now: datetime | None = None,
    limit: int = 20,
) -> list[NoticeResult]:
    """One pass over the open notices older than ``grace``; returns what it did."""
    now = now or utcnow()
    started = time.monotonic()

    def clock() -> datetime:  # the pass's own time: ``now`` as it moves on
        return now + timedelta(seconds=time.monotonic() - started)

    budget = grace.total_seconds() / 2
    send_timeout = min(SEND_TIMEOUT, grace.total_seconds() / 4)
    done: list[NoticeResult] = []
    async with sessionmaker() as session:
        due = await notices.due(session, now=now, grace=grace, limit=limit)
    for notice_id in due:
        if time.monotonic() - started > budget:
            break  # the rest waits: a claim made now could outlive the grace period
        async with sessionmaker() as session:
            claimed = await notices.claim(session, notice_id, now=clock(), grace=grace)
            await session.commit()
        if claimed is None:
            continue  # sent meanwhile, or another pass has it
        result, struggling = await send_claimed(
            sessionmaker,
            bot,
            claimed,
            claimed_notice_words,
            send_timeout=send_timeout,
            who="the maintenance pass (the web server did not get it out)",
            reraise=(StopRequested,),
        )
        done.append(result)
        if struggling:
            break  # Telegram is struggling: the rest waits for the next pass
    return done


async def send_fresh_notices(
    sessionmaker: async_sessionmaker[AsyncSession],
    bot: Bot,
    keys: list[str],
    *,
    grace: timedelta,
) -> list[NoticeResult]:
    """Send notices just committed (the renewal pass's), at once: each claimed first (of two
    senders one wins), sent once, marked. One that fails stays for the maintenance pass."""
    return await send_fresh(
        sessionmaker, bot, keys, claimed_notice_words, grace=grace, reraise=(StopRequested,)
    )


async def deliver_due_notices(
    settings: Settings, *, now: datetime | None = None, limit: int = 20
) -> list[NoticeResult]:
    """The pass with its own engine and Bot (the worker's maintenance step)."""
    async with resources(settings) as (sessionmaker, bot):
        return await send_due_notices(
            sessionmaker,
            bot,
            grace=timedelta(seconds=settings.PAYMENT_NOTICE_GRACE_SECONDS),
            now=now,
            limit=limit,
        )
