"""Sending a recorded payment or plan message (the ``payment_notices`` outbox), once.

One implementation for every sender: the bot right after a roll-over or an admin's refund,
the worker's renewal and maintenance passes. A notice is claimed first (of two senders one
wins), sent once in the user's current language, and its outcome recorded:

- sent: marked done;
- the user blocked the bot (403) or Telegram refuses the chat for good (400): marked done
  with that outcome, never retried;
- a transient failure (5xx, 429, network, timeout): the error is recorded and the claim
  stays, so the maintenance pass tries again one grace period later; a notice still failing
  GIVE_UP_AFTER after it was written is given up, logged as an error. The caller is told
  Telegram is struggling and stops.

The words come from the caller (``words``: :func:`texts.money_texts.claimed_notice_words`;
texts and tg do not import each other); the top-up button is the bot's main-menu one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import timedelta

from aiogram import Bot
from sqlalchemy.ext.asyncio import AsyncSession

from billing import notices
from billing.models import NoticeOutcome, utcnow
from tg.buttons import MENU_TOPUP, one_button
from tg.errors import Kind, classify

log = logging.getLogger(__name__)

SEND_TIMEOUT = 15.0
GIVE_UP_AFTER = timedelta(hours=48)

# A session per step: an ``async_sessionmaker``, or one that hands out a session the caller holds.
Sessions = Callable[[], AbstractAsyncContextManager[AsyncSession]]
# A claimed notice's text and the label of its top-up button (None: no button).
Words = Callable[[notices.ClaimedNotice], tuple[str, str | None]]


@dataclass(frozen=True)
class NoticeResult:
    notice_id: int
    key: str
    outcome: str  # a NoticeOutcome value, or "released"


async def _finish(
    sessionmaker: Sessions, notice_id: int, outcome: NoticeOutcome, error: str | None = None
) -> None:
    async with sessionmaker() as session:
        await notices.mark_done(session, notice_id=notice_id, outcome=outcome, error=error)
        await session.commit()


async def _release(sessionmaker: Sessions, claimed: notices.ClaimedNotice, error: str) -> None:
    async with sessionmaker() as session:
        await notices.release(session, claimed.id, error=error, claimed_at=claimed.claimed_at)
        await session.commit()


async def send_claimed(
    sessionmaker: Sessions,
    bot: Bot,
    claimed: notices.ClaimedNotice,
    words: Words,
    *,
    send_timeout: float,
    who: str = "",
    reraise: tuple[type[BaseException], ...] = (),
) -> tuple[NoticeResult, bool]:
    """Send one claimed notice once and record the outcome; (result, Telegram is struggling:
    the caller stops). ``reraise``: exceptions that end the sender (a worker's SIGTERM); the
    claim then lapses after the grace period."""
    try:
        text, topup_label = words(claimed)
        markup = one_button(topup_label, MENU_TOPUP) if topup_label is not None else None
        async with asyncio.timeout(send_timeout):
            await bot.send_message(chat_id=claimed.telegram_id, text=text, reply_markup=markup)
    except reraise:
        raise
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


async def send_fresh(
    sessionmaker: Sessions,
    bot: Bot,
    keys: Iterable[str],
    words: Words,
    *,
    grace: timedelta,
    send_timeout: float | None = None,
    reraise: tuple[type[BaseException], ...] = (),
) -> list[NoticeResult]:
    """Send notices just committed, at once: each claimed first (``claim_fresh``: of two
    senders one wins; a pass or another sender then sends nothing twice), sent once, marked.
    One that fails stays for the maintenance pass, and the rest wait with it."""
    if send_timeout is None:
        send_timeout = min(SEND_TIMEOUT, grace.total_seconds() / 4)
    done: list[NoticeResult] = []
    for key in keys:
        async with sessionmaker() as session:
            claimed = await notices.claim_fresh(session, key, now=utcnow(), grace=grace)
            await session.commit()
        if claimed is None:
            continue  # another sender has it
        result, struggling = await send_claimed(
            sessionmaker, bot, claimed, words, send_timeout=send_timeout, reraise=reraise
        )
        done.append(result)
        if struggling:
            break  # Telegram is struggling: the rest waits for the maintenance pass
    return done
