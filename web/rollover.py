"""Reads of a user's money that show what is due as done: a subscription period that ended
(renewed or ended), a package expired, free operations due. The Mini App and the operator
API read through :func:`roll_over_due` first, the bot through ``bot.plan_notices``.

``billing.plans.roll_over`` is the cheap check and the roll-over in one: nothing due is one
read, no lock, no write (and no commit here); something due is rolled over once, however
many readers, committed, and the user is told at once (one message that fails to go out is
left to the maintenance pass)."""

from __future__ import annotations

import logging
from datetime import timedelta

from aiohttp import ChainMapProxy, web
from sqlalchemy.ext.asyncio import AsyncSession

from billing import plans
from texts.money_texts import claimed_notice_words
from tg.notices import send_fresh
from web.keys import BOT, SESSIONMAKER, SETTINGS

log = logging.getLogger(__name__)

NOTICE_SEND_SECONDS = 5.0  # a roll-over's message, sent while the request waits


async def roll_over_due(
    app: web.Application | ChainMapProxy, session: AsyncSession, user_id: int
) -> bool:
    """Roll over what is due for the user; True when something was (the caller reads the
    user anew). The session's transaction is ended either way."""
    settings = app[SETTINGS]
    events = await plans.roll_over(session, settings, user_id=user_id)
    if not events:
        await session.rollback()  # only read: nothing to commit
        return False
    await session.commit()
    keys = [e.notice_key for e in events if e.notice_key]
    if keys:
        try:
            await send_fresh(
                app[SESSIONMAKER],
                app[BOT],
                keys,
                claimed_notice_words,
                grace=timedelta(seconds=settings.PAYMENT_NOTICE_GRACE_SECONDS),
                send_timeout=NOTICE_SEND_SECONDS,
            )
        except Exception:  # noqa: BLE001 - the maintenance pass sends it; the read goes on
            log.warning("roll-over notices %s not sent now", keys, exc_info=True)
    return True
