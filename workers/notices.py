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
   network, timeout): release the claim and end the pass — Telegram is struggling, the next
   pass tries again; past MAX_ATTEMPTS the notice is given up, logged as an error.

A pass that dies after its claim leaves the notice claimed; one grace period later another
pass takes it over (the message may then go out twice: at least once, never lost).

It runs in the worker's main thread between jobs, so it is bounded: at most ``limit``
notices, one try each, SEND_TIMEOUT seconds per try, and it stops at the first sign of
trouble. Nothing here touches a balance or the ledger.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNotFound,
)
from rq.exceptions import StopRequested
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing import notices
from billing.models import NoticeOutcome, utcnow
from billing.settings import Settings
from web.notify import notice_text
from workers.jobs import resources

log = logging.getLogger(__name__)

SEND_TIMEOUT = 15.0
MAX_ATTEMPTS = 50
PERMANENT = (TelegramBadRequest, TelegramNotFound)
TRANSIENT = (TelegramAPIError, ClientDecodeError, aiohttp.ClientError, TimeoutError, OSError)


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
    sessionmaker: async_sessionmaker[AsyncSession], notice_id: int, error: str
) -> None:
    async with sessionmaker() as session:
        await notices.release(session, notice_id, error=error)
        await session.commit()


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
    done: list[NoticeResult] = []
    async with sessionmaker() as session:
        due = await notices.due(session, now=now, grace=grace, limit=limit)
    for notice_id in due:
        async with sessionmaker() as session:
            claimed = await notices.claim(session, notice_id, now=now, grace=grace)
            await session.commit()
        if claimed is None:
            continue  # sent meanwhile, or another pass has it
        try:
            text = notice_text(
                kind=claimed.kind,
                amount=claimed.amount,
                balance_after=claimed.balance_after,
                reason=claimed.reason,
                language=claimed.language,
            )
            async with asyncio.timeout(SEND_TIMEOUT):
                await bot.send_message(chat_id=claimed.telegram_id, text=text)
        except StopRequested:
            raise  # SIGTERM mid-pass; the claim lapses after the grace period
        except TelegramForbiddenError:
            log.info("notice %s: chat %s blocked the bot; done", claimed.key, claimed.telegram_id)
            await _finish(sessionmaker, claimed.id, NoticeOutcome.BLOCKED, "blocked")
            done.append(NoticeResult(claimed.id, claimed.key, NoticeOutcome.BLOCKED.value))
            continue
        except PERMANENT as exc:
            log.error("notice %s: Telegram refused it for good: %s", claimed.key, exc)
            await _finish(sessionmaker, claimed.id, NoticeOutcome.REFUSED, str(exc))
            done.append(NoticeResult(claimed.id, claimed.key, NoticeOutcome.REFUSED.value))
            continue
        except Exception as exc:  # noqa: BLE001 - transient, or unknown: retried, then given up
            if not isinstance(exc, TRANSIENT):
                log.exception("notice %s: unexpected error", claimed.key)
            error = f"{type(exc).__name__}: {exc}"
            if claimed.attempts >= MAX_ATTEMPTS:
                log.error(
                    "notice %s: not delivered after %d attempts, given up: %s",
                    claimed.key,
                    claimed.attempts,
                    error,
                )
                await _finish(sessionmaker, claimed.id, NoticeOutcome.GAVE_UP, error)
                done.append(NoticeResult(claimed.id, claimed.key, NoticeOutcome.GAVE_UP.value))
            else:
                log.warning(
                    "notice %s: attempt %d failed, next pass retries: %s",
                    claimed.key,
                    claimed.attempts,
                    error,
                )
                await _release(sessionmaker, claimed.id, error)
                done.append(NoticeResult(claimed.id, claimed.key, "released"))
            break  # Telegram is struggling: the rest waits for the next pass
        await _finish(sessionmaker, claimed.id, NoticeOutcome.SENT)
        done.append(NoticeResult(claimed.id, claimed.key, NoticeOutcome.SENT.value))
        log.warning(
            "notice %s sent by the maintenance pass (the web server did not get it out)",
            claimed.key,
        )
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
