"""Roll over on read, and tell the user at once.

``billing.plans.roll_over`` renews, ends and expires what is due (once, however many callers)
and writes the user's messages to the outbox (``payment_notices``) in the same transaction.
When the bot is the one that rolled over — before a quote, on /plans and /balance, or inside a
charge (``ChargeResult.rolled_over``) — it sends those messages right after the commit, so the
user hears that a subscription renewed or fell back to the free plan now, not when a worker's
maintenance pass picks the outbox up (PAYMENT_NOTICE_GRACE_SECONDS later). Each notice is
claimed first (``claim_fresh``: of two senders one wins) and marked (:func:`tg.notices.send_fresh`,
the one sender bot, admin and workers share); one that fails to go out is left to the
maintenance pass. Best effort: nothing here fails the update.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import nullcontext
from datetime import timedelta
from typing import Any

from aiogram import Bot
from sqlalchemy.ext.asyncio import AsyncSession

from billing import plans
from billing.settings import Settings
from texts.money_texts import claimed_notice_words
from tg.notices import send_fresh

log = logging.getLogger(__name__)

SEND_SECONDS = 10.0


async def roll_over(
    session: AsyncSession, settings: Settings, user_id: int, bot: Bot | None = None
) -> None:
    """Renew or end what is due for the user (committed), and tell them."""
    events = await plans.roll_over(session, settings, user_id=user_id)
    await session.commit()
    if events and bot is not None:
        await tell(session, settings, bot, events)


async def tell(session: AsyncSession, settings: Settings, bot: Bot, events: Iterable[Any]) -> None:
    """Send the messages of roll-over events just committed."""
    grace = timedelta(seconds=settings.PAYMENT_NOTICE_GRACE_SECONDS)
    for key in [e.notice_key for e in events if getattr(e, "notice_key", None)]:
        try:
            await _tell_one(session, bot, key, grace)
        except Exception:  # noqa: BLE001 - the maintenance pass sends it
            await session.rollback()
            log.warning("notice %s not sent now; left to the maintenance pass", key, exc_info=True)


async def _tell_one(session: AsyncSession, bot: Bot, key: str, grace: timedelta) -> None:
    await send_fresh(
        lambda: nullcontext(session),
        bot,
        (key,),
        claimed_notice_words,
        grace=grace,
        send_timeout=SEND_SECONDS,
    )
