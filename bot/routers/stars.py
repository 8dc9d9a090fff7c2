"""⭐ Telegram Stars top-ups: a pack's invoice, the pre-checkout answer, the credit of a
successful payment (billing.stars, through billing.payments' once-only credit)."""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.types import CallbackQuery, LabeledPrice, Message, PreCheckoutQuery
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing import notices, stars
from billing.models import NoticeOutcome
from billing.prices import format_rub
from billing.settings import Settings
from bot.callbacks import StarsPack
from bot.routers.admin import tell_user
from bot.users import ensure_user, menu_for
from texts.i18n import t

log = logging.getLogger(__name__)


async def pack_chosen(
    query: CallbackQuery,
    callback_data: StarsPack,
    session: AsyncSession,
    settings: Settings,
    bot: Bot,
    lang: str,
) -> None:
    """A pack pressed: the pending purchase first (committed), then its Stars invoice."""
    if not settings.stars_enabled or not 0 <= callback_data.index < len(settings.STARS_PACKS):
        await query.answer(t("bot-button-outdated", lang), show_alert=True)
        return
    count = settings.STARS_PACKS[callback_data.index]
    account = await ensure_user(session, settings, query.from_user, lang)
    amount = format_rub(settings.stars_kopecks(count))
    invoice = await stars.start_purchase(
        session,
        settings,
        user_id=account.id,
        stars=count,
        description=t("bot-stars-description", lang, stars=count, amount=amount)[:128],
    )
    await session.commit()
    await query.answer()
    await bot.send_invoice(
        chat_id=query.from_user.id,
        title=t("bot-stars-title", lang, amount=amount)[:32],
        description=t("bot-stars-description", lang, stars=count, amount=amount)[:255],
        payload=invoice.payload,
        currency=stars.CURRENCY,
        prices=[LabeledPrice(label=t("bot-stars-label", lang, amount=amount), amount=count)],
    )


async def pre_checkout(query: PreCheckoutQuery, session: AsyncSession, lang: str) -> None:
    """Telegram waits at most 10 s for this answer: one read, then ok or the reason."""
    refused = await stars.check_pre_checkout(
        session,
        telegram_id=query.from_user.id,
        payload=query.invoice_payload,
        currency=query.currency,
        total_amount=query.total_amount,
    )
    await session.rollback()
    if refused is None:
        await query.answer(ok=True)
        return
    log.warning(
        "pre-checkout %s of %s refused: %s (payload %r, %s %s)",
        query.id,
        query.from_user.id,
        refused.value,
        query.invoice_payload,
        query.total_amount,
        query.currency,
    )
    await query.answer(ok=False, error_message=t(f"bot-stars-refused-{refused.value}", lang))


async def successful_payment(
    message: Message,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    lang: str,
) -> None:
    """Credited once by its charge id; the user sees the new balance."""
    paid = message.successful_payment
    assert paid is not None and message.from_user is not None
    await session.rollback()
    credit = await stars.credit_charge(
        sessionmaker,
        settings,
        telegram_id=message.from_user.id,
        payload=paid.invoice_payload,
        currency=paid.currency,
        total_amount=paid.total_amount,
        charge_id=paid.telegram_payment_charge_id,
        raw=paid.model_dump(mode="json", exclude_none=True),
    )
    balance = format_rub(credit.balance_after)
    if credit.outcome is stars.StarsOutcome.ALREADY_CREDITED:
        log.info("stars charge %s delivered again: already credited", credit.payment_id)
        return
    menu = await menu_for(session, settings, message.from_user, lang)
    await message.answer(
        t(
            "bot-stars-credited",
            lang,
            stars=credit.stars,
            amount=format_rub(credit.amount),
            balance=balance,
        ),
        reply_markup=menu,
    )
    # Told here: the maintenance pass must not send the "credited" message again.
    await notices.mark_done_safely(
        sessionmaker, notices.credited_key(credit.payment_id), NoticeOutcome.SENT
    )


async def refunded_payment(
    message: Message,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    bot: Bot,
) -> None:
    """Telegram returned a charge's Stars (an operator's refund, or its own): the same
    debit, once per charge, and the user's message (sent now, or by the maintenance pass)."""
    refunded = message.refunded_payment
    assert refunded is not None
    if refunded.currency != stars.CURRENCY:
        log.error("refunded_payment in %s: not a Stars payment, ignored", refunded.currency)
        return
    done = await stars.record_refund(sessionmaker, charge_id=refunded.telegram_payment_charge_id)
    if done.outcome is stars.RefundOutcome.UNKNOWN:
        log.error(
            "refunded_payment of unknown charge %s: nothing debited",
            refunded.telegram_payment_charge_id,
        )
    elif done.outcome is stars.RefundOutcome.RECORDED and done.notice_key is not None:
        await tell_user(sessionmaker, bot, settings, (done.notice_key,))
    else:
        log.info(
            "refunded_payment of charge %s: already debited", refunded.telegram_payment_charge_id
        )


def create_router() -> Router:
    """A fresh router (a dispatcher per test or process: a router has one parent)."""
    router = Router(name="stars")
    router.callback_query.register(pack_chosen, StarsPack.filter())
    router.pre_checkout_query.register(pre_checkout)
    router.message.register(successful_payment, F.successful_payment)
    router.message.register(refunded_payment, F.refunded_payment)
    return router
