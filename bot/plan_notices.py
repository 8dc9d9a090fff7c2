"""Roll over on read, and tell the user at once.

``billing.plans.roll_over`` renews, ends and expires what is due (once, however many callers)
and writes the user's messages to the outbox (``payment_notices``) in the same transaction.
When the bot is the one that rolled over — before a quote, on /plans and /balance, or inside a
charge (``ChargeResult.rolled_over``) — it sends those messages right after the commit, so the
user hears that a subscription renewed or fell back to the free plan now, not when a worker's
maintenance pass picks the outbox up (PAYMENT_NOTICE_GRACE_SECONDS later). Each notice is
claimed first (``claim_fresh``: of two senders one wins) and marked; one that fails to go out
is left to the maintenance pass. Best effort: nothing here fails the update.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from aiogram import Bot
from sqlalchemy.ext.asyncio import AsyncSession

from billing import notices, plans
from billing.models import NoticeOutcome, utcnow
from billing.settings import Settings
from texts.i18n import t
from texts.money_texts import notice_text
from texts.plan_texts import wants_topup_button
from tg.buttons import MENU_TOPUP, one_button

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
    claimed = await notices.claim_fresh(session, key, now=utcnow(), grace=grace)
    await session.commit()
    if claimed is None:
        return  # another sender has it
    text = notice_text(
        kind=claimed.kind,
        amount=claimed.amount,
        balance_after=claimed.balance_after,
        reason=claimed.reason,
        language=claimed.language,
        plan=claimed.plan,
    )
    markup = (
        one_button(t("bot-btn-topup-now", claimed.language), MENU_TOPUP)
        if wants_topup_button(claimed.kind, claimed.reason)
        else None
    )
    try:
        async with asyncio.timeout(SEND_SECONDS):
            await bot.send_message(claimed.telegram_id, text, reply_markup=markup)
    except Exception as exc:  # noqa: BLE001 - the claim lapses; the pass sends it later
        log.warning("notice %s not sent now, left to the maintenance pass: %r", key, exc)
        await notices.release(
            session, claimed.id, error=repr(exc)[:500], claimed_at=claimed.claimed_at
        )
        await session.commit()
        return
    await notices.mark_done(session, notice_id=claimed.id, outcome=NoticeOutcome.SENT)
    await session.commit()
