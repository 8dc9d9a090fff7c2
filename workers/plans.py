"""The scheduled plans pass: renews, ends and expires every holding that is due, tops up free
operations (FREE_OPERATIONS_RENEW_DAYS), and tells the users.

It runs in every worker's maintenance step (:class:`workers.worker.MediaWorker`), which RQ
already runs on a schedule (every SWEEP_INTERVAL_SECONDS, next to the sweeper): at most once
per PLAN_RENEWAL_INTERVAL_SECONDS per worker. No loop of its own, no extra scheduler.

Each due user is rolled over in a transaction of its own (:func:`billing.plans.roll_over`:
once per period per holding, however many workers and bots do it at once — a second pass
finds nothing due). After the commit the user's messages are sent at once
(:func:`workers.notices.send_fresh_notices`); one that does not get out stays in the outbox
for the maintenance pass. Bounded: ``limit`` users a round, rounds until nothing is due or
the time budget is spent; a user whose roll-over fails is logged and left for the next pass.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aiogram import Bot
from rq.exceptions import StopRequested
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing import plans
from billing.models import utcnow
from billing.settings import Settings
from workers.notices import NoticeResult, send_fresh_notices
from workers.runtime import resources

log = logging.getLogger(__name__)

BUDGET_SECONDS = 20.0  # in the worker's main thread, between jobs


@dataclass
class PassResult:
    users: int = 0
    events: list[plans.RollOverEvent] = field(default_factory=list)
    sent: list[NoticeResult] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)  # user ids left for the next pass


async def roll_over_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    bot: Bot,
    settings: Settings,
    *,
    now: datetime | None = None,
    limit: int = 100,
    budget: float = BUDGET_SECONDS,
) -> PassResult:
    """Roll over every due user (as of ``now``, default: the clock as the pass goes on)."""
    started = time.monotonic()
    grace = timedelta(seconds=settings.PAYMENT_NOTICE_GRACE_SECONDS)
    done = PassResult()
    skip: set[int] = set()
    while time.monotonic() - started < budget:
        moment = now or utcnow()
        async with sessionmaker() as session:
            due = await plans.due_users(session, settings, now=moment, limit=limit + len(skip))
        due = [user_id for user_id in due if user_id not in skip][:limit]
        if not due:
            break
        for user_id in due:
            skip.add(user_id)  # once per pass, done or failed
            try:
                async with sessionmaker() as session:
                    events = await plans.roll_over(
                        session, settings, user_id=user_id, now=now or utcnow()
                    )
                    await session.commit()
            except StopRequested:
                raise
            except Exception:  # noqa: BLE001 - one user must not stop the pass
                log.exception("plans: user %s not rolled over; the next pass retries", user_id)
                done.failed.append(user_id)
                continue
            done.users += 1
            done.events.extend(events)
            keys = [e.notice_key for e in events if e.notice_key]
            if keys:
                done.sent.extend(await send_fresh_notices(sessionmaker, bot, keys, grace=grace))
            if time.monotonic() - started >= budget:
                break
    if done.events:
        kinds: dict[str, int] = {}
        for event in done.events:
            kinds[event.kind] = kinds.get(event.kind, 0) + 1
        log.info("plans: %d users rolled over: %s", done.users, kinds)
    return done


async def renew_due_plans(settings: Settings, *, now: datetime | None = None) -> PassResult:
    """The pass with its own engine and Bot (the worker's maintenance step)."""
    async with resources(settings) as (sessionmaker, bot):
        return await roll_over_due(sessionmaker, bot, settings, now=now)
