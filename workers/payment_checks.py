"""The safety-net pass: YooKassa payments whose notification never came, settled by asking
the API.

It runs in every worker's maintenance step (:class:`workers.worker.MediaWorker`), at most
once per PAYMENT_RECHECK_INTERVAL_SECONDS per worker, when YooKassa is configured. For each
open payment that is due (:mod:`billing.payment_checks`: PAYMENT_RECHECK_AFTER_SECONDS old,
then backing off up to its expiry):

1. claim the check with a conditional UPDATE and commit (of two passes one asks the API);
2. :func:`billing.payments.reconcile_payment` — the webhook's own path: it asks the API,
   compares the answer with the row, and credits once (a plan's payment buys its plan) or
   marks it canceled, each payment in transactions of its own;
3. a change it made is told to the user at once with the message the webhook would have
   sent (the payment-notice outbox: claimed first, so a webhook or a second sender that
   meets it sends nothing twice; one that does not get out is left to the notices pass).

Bounded: ``limit`` payments a round, rounds until nothing is due or ``budget`` seconds are
spent; YooKassa unavailable ends the pass at once (the next pass, one interval later, tries
again, and the claimed payment's next check is already scheduled).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aiogram import Bot
from rq.exceptions import StopRequested
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing import notices, payment_checks, stars
from billing.models import utcnow
from billing.payments import Outcome, ReconcileResult, reconcile_payment
from billing.settings import Settings
from billing.yookassa import GatewayError, GatewayUnavailable, YooKassaGateway
from workers.notices import NoticeResult, send_fresh_notices
from workers.runtime import resources

log = logging.getLogger(__name__)

BUDGET_SECONDS = 20.0  # in the worker's main thread, between jobs


@dataclass
class CheckPassResult:
    asked: dict[int, str] = field(default_factory=dict)  # payment id -> outcome
    sent: list[NoticeResult] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)  # asked, no answer we could use
    unavailable: bool = False  # YooKassa did not answer: the pass stopped


def _notice_keys(result: ReconcileResult) -> list[str]:
    """The message of the change this check made (none when another path made it)."""
    assert result.payment_id is not None
    if result.outcome is Outcome.CREDITED:
        return [notices.credited_key(result.payment_id)]
    if result.outcome is Outcome.CANCELED and result.detail == "canceled now":
        return [notices.canceled_key(result.payment_id)]
    return []


async def check_open_payments(
    sessionmaker: async_sessionmaker[AsyncSession],
    gateway: YooKassaGateway,
    bot: Bot,
    settings: Settings,
    *,
    now: datetime | None = None,
    limit: int = 20,
    budget: float = BUDGET_SECONDS,
) -> CheckPassResult:
    """One pass (as of ``now``, which moves on with the pass; default: the clock)."""
    started = time.monotonic()
    grace = timedelta(seconds=settings.PAYMENT_NOTICE_GRACE_SECONDS)

    def clock() -> datetime:
        if now is None:
            return utcnow()
        return now + timedelta(seconds=time.monotonic() - started)

    done = CheckPassResult()
    seen: set[int] = set()
    while time.monotonic() - started < budget:
        async with sessionmaker() as session:
            due = await payment_checks.due(
                session, now=clock(), settings=settings, limit=limit + len(seen)
            )
        due = [check for check in due if check.payment_id not in seen][:limit]
        if not due:
            break
        for check in due:
            if time.monotonic() - started >= budget:
                break
            seen.add(check.payment_id)  # once per pass, whatever comes of it
            async with sessionmaker() as session:
                claimed = await payment_checks.claim(
                    session, check, now=clock(), settings=settings
                )
                await session.commit()
            if claimed is None:
                continue  # another pass asks, or it was settled meanwhile
            try:
                result = await reconcile_payment(
                    sessionmaker, gateway, payment_id=check.payment_id
                )
            except StopRequested:
                raise
            except GatewayUnavailable as exc:
                log.warning(
                    "payment checks: YooKassa unavailable (payment %s): %s; the pass stops",
                    check.payment_id,
                    exc,
                )
                done.failed.append(check.payment_id)
                done.unavailable = True
                return done
            except GatewayError as exc:
                log.error("payment checks: payment %s: %s", check.payment_id, exc)
                done.failed.append(check.payment_id)
                continue
            except Exception:  # noqa: BLE001 - one payment must not stop the pass
                log.exception("payment checks: payment %s not checked", check.payment_id)
                done.failed.append(check.payment_id)
                continue
            done.asked[check.payment_id] = result.outcome.value
            keys = _notice_keys(result)
            if keys:
                # A change no notification brought: the webhook URL, a firewall or an outage
                # kept it away. Worth an operator's look when it happens often.
                log.warning(
                    "payment %s: %s by the safety net (check %d, %s after it was made): "
                    "its notification never came",
                    check.payment_id,
                    result.outcome.value,
                    claimed.check_no,
                    clock() - payment_checks.as_utc(check.created_at),
                )
                done.sent.extend(await send_fresh_notices(sessionmaker, bot, keys, grace=grace))
            elif claimed.next_check_at is None and result.outcome in (
                Outcome.PENDING,
                Outcome.WAITING_FOR_CAPTURE,
            ):
                log.warning(
                    "payment %s: still %s past its expiry; no more checks (a notification or "
                    "'Проверить оплату' still settles it)",
                    check.payment_id,
                    result.outcome.value,
                )
    return done


async def check_payments(settings: Settings, *, now: datetime | None = None) -> CheckPassResult:
    """The pass with its own engine, Bot and gateway (the worker's maintenance step)."""
    gateway = YooKassaGateway(settings)
    async with resources(settings) as (sessionmaker, bot):
        return await check_open_payments(sessionmaker, gateway, bot, settings, now=now)


async def expire_stars_invoices(settings: Settings, *, now: datetime | None = None) -> list[int]:
    """Stars invoices unpaid for PAYMENT_PENDING_EXPIRY_SECONDS canceled (the worker's
    maintenance step, with the YooKassa checks): :func:`billing.stars.expire_invoices`."""
    made_before = (now or utcnow()) - timedelta(seconds=settings.PAYMENT_PENDING_EXPIRY_SECONDS)
    async with resources(settings) as (sessionmaker, _bot):
        async with sessionmaker() as session:
            expired = await stars.expire_invoices(session, made_before=made_before)
            await session.commit()
    if expired:
        log.info("stars: %d unpaid invoice(s) expired: %s", len(expired), expired[:20])
    return expired
