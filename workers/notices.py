"""The maintenance pass that sends the payment messages the web server did not get out.

The web server sends "credited" / "canceled" / "refunded" right after the commit and marks
the recorded notice done (:mod:`billing.notices`). When it crashed or restarted in between,
or Telegram stayed down through its retries, the notice stays open; this pass, run from every
worker's maintenance step next to the sweeper, sends what is still open
PAYMENT_NOTICE_GRACE_SECONDS after it was written:

1. claim it with a conditional update and commit (of two passes, one wins; the other skips);
2. send it once, in the user's current language, with the catalogue's text (web.notify);
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

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiogram import Bot
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from rq.exceptions import StopRequested
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing import notices
from billing.models import NoticeOutcome, utcnow
from billing.settings import Settings
from texts.i18n import t
from texts.money_texts import notice_text
from texts.plan_texts import wants_topup_button
from tg.errors import Kind, classify
from workers.runtime import resources

log = logging.getLogger(__name__)

SEND_TIMEOUT = 15.0
# The bot's "top up" button (bot.callbacks.Menu(action="topup").pack(); a process does not
# import another: tests/workers/test_plan_renewal_pass.py checks the two agree).
TOPUP_CALLBACK = "menu:topup"
GIVE_UP_AFTER = timedelta(hours=48)


@dataclass(frozen=True)
class NoticeResult:
    notice_id: int
    key: str
    outcome: str  # a NoticeOutcome value, or "released"


async def _finish(
    sessionmaker: async_sessionmaker[AsyncSession],
    notice_id: int,
    outcome: NoticeOutcome,
    error: str | None = None,
) -> None:
    async with sessionmaker() as session:
        await notices.mark_done(session, notice_id=notice_id, outcome=outcome, error=error)
        await session.commit()


async def _release(
    sessionmaker: async_sessionmaker[AsyncSession], claimed: notices.ClaimedNotice, error: str
) -> None:
    async with sessionmaker() as session:
        await notices.release(session, claimed.id, error=error, claimed_at=claimed.claimed_at)
        await session.commit()


def notice_message(claimed: notices.ClaimedNotice) -> tuple[str, InlineKeyboardMarkup | None]:
    """The text of a recorded notice, in the user's current language, and its button: a
    subscription that ended for want of money offers a top-up (the bot's main-menu button,
    ``bot.callbacks.Menu(action="topup")``)."""
    text = notice_text(
        kind=claimed.kind,
        amount=claimed.amount,
        balance_after=claimed.balance_after,
        reason=claimed.reason,
        language=claimed.language,
        plan=claimed.plan,
    )
    if not wants_topup_button(claimed.kind, claimed.reason):
        return text, None
    button = InlineKeyboardButton(
        text=t("bot-btn-topup-now", claimed.language), callback_data=TOPUP_CALLBACK
    )
    return text, InlineKeyboardMarkup(inline_keyboard=[[button]])


async def _send_claimed(
    sessionmaker: async_sessionmaker[AsyncSession],
    bot: Bot,
    claimed: notices.ClaimedNotice,
    *,
    send_timeout: float,
    who: str,
) -> tuple[NoticeResult, bool]:
    """Send one claimed notice once and record the outcome; (result, Telegram is struggling:
    the caller stops)."""
    try:
        text, markup = notice_message(claimed)
        async with asyncio.timeout(send_timeout):
            await bot.send_message(chat_id=claimed.telegram_id, text=text, reply_markup=markup)
    except StopRequested:
        raise  # SIGTERM mid-pass; the claim lapses after the grace period
    except Exception as exc:  # noqa: BLE001 - classified below; unknown: retried, then given up
        kind = classify(exc)
        if kind is Kind.BLOCKED:
            log.info("notice %s: chat %s blocked the bot; done", claimed.key, claimed.telegram_id)
            await _finish(sessionmaker, claimed.id, NoticeOutcome.BLOCKED, "blocked")
            return NoticeResult(claimed.id, claimed.key, NoticeOutcome.BLOCKED.value), False
        if kind in (Kind.REFUSED, Kind.NOT_MODIFIED):
            log.error("notice %s: Telegram refused it for good: %s", claimed.key, exc)
            await _finish(sessionmaker, claimed.id, NoticeOutcome.REFUSED, str(exc))
            return NoticeResult(claimed.id, claimed.key, NoticeOutcome.REFUSED.value), False
        if kind is None:
            log.exception("notice %s: unexpected error", claimed.key)
        error = f"{type(exc).__name__}: {exc}"
        if claimed.claimed_at - claimed.created_at >= GIVE_UP_AFTER:
            log.error(
                "notice %s: not delivered in %s (%d attempts), given up: %s",
                claimed.key,
                GIVE_UP_AFTER,
                claimed.attempts,
                error,
            )
            await _finish(sessionmaker, claimed.id, NoticeOutcome.GAVE_UP, error)
            return NoticeResult(claimed.id, claimed.key, NoticeOutcome.GAVE_UP.value), True
        log.warning(
            "notice %s: attempt %d failed, retried in one grace period: %s",
            claimed.key,
            claimed.attempts,
            error,
        )
        await _release(sessionmaker, claimed, error)
        return NoticeResult(claimed.id, claimed.key, "released"), True
    await _finish(sessionmaker, claimed.id, NoticeOutcome.SENT)
    if who:
        log.warning("notice %s sent by %s", claimed.key, who)
    return NoticeResult(claimed.id, claimed.key, NoticeOutcome.SENT.value), False


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
        result, struggling = await _send_claimed(
            sessionmaker,
            bot,
            claimed,
            send_timeout=send_timeout,
            who="the maintenance pass (the web server did not get it out)",
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
    send_timeout = min(SEND_TIMEOUT, grace.total_seconds() / 4)
    done: list[NoticeResult] = []
    for key in keys:
        async with sessionmaker() as session:
            claimed = await notices.claim_fresh(session, key, now=utcnow(), grace=grace)
            await session.commit()
        if claimed is None:
            continue
        result, struggling = await _send_claimed(
            sessionmaker, bot, claimed, send_timeout=send_timeout, who=""
        )
        done.append(result)
        if struggling:
            break
    return done


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
