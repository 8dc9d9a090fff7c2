"""⭐ Telegram Stars: a pack's or a plan's invoice (a message, or a link), the pre-checkout
answer, the credit of a successful payment (billing.stars, through billing.payments'
once-only credit; a plan's payment then buys the plan, as a YooKassa one does)."""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.types import CallbackQuery, Message, PreCheckoutQuery
from aiogram.types import User as TgUser
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing import notices, plans, stars, wallet
from billing.errors import BillingError
from billing.models import NoticeOutcome
from billing.prices import format_rub
from billing.settings import Settings
from bot.callbacks import PlanAction, StarsPack
from bot.once import first_delivery
from bot.routers.admin import tell_user
from bot.users import ensure_user, menu_for
from texts.i18n import t
from texts.money_texts import InvoiceText, pack_invoice_text, plan_invoice_text
from texts.plan_texts import plan_payment_text
from tg import invoices

log = logging.getLogger(__name__)


async def start_invoice(
    session: AsyncSession,
    settings: Settings,
    user: TgUser,
    lang: str,
    *,
    pack: int | None = None,
    plan_code: str | None = None,
) -> tuple[stars.StarsInvoice, InvoiceText]:
    """The pending purchase an invoice names (committed before the invoice exists) and the
    invoice's words: ``pack`` ⭐ of STARS_PACKS, or the plan ``plan_code``. Raises
    PlanNotFound / PlanNotForSale / BillingError before anything is written."""
    account = await ensure_user(session, settings, user, lang)
    if plan_code is not None:
        plan = await plans.get_plan(session, plan_code)
        count = stars.plan_stars(settings, plan.price) or 0  # 0: refused just below
        words = plan_invoice_text(
            settings,
            name=wallet.plan_info(plan).name(lang),
            price=plan.price,
            stars=count,
            language=lang,
        )
        invoice = await stars.start_plan_purchase(
            session,
            settings,
            user_id=account.id,
            plan_code=plan_code,
            description=words.description[:128],
        )
    elif pack is not None:
        words = pack_invoice_text(settings, pack, lang)
        invoice = await stars.start_purchase(
            session,
            settings,
            user_id=account.id,
            stars=pack,
            description=words.description[:128],
        )
    else:
        raise BillingError("a Stars invoice needs a pack or a plan")
    await session.commit()
    return invoice, words


async def invoice_link(
    session: AsyncSession,
    settings: Settings,
    bot: Bot,
    user: TgUser,
    lang: str,
    *,
    pack: int | None = None,
    plan_code: str | None = None,
) -> str:
    """A Stars invoice link (createInvoiceLink) of a new pending purchase, for a Mini App's
    ``openInvoice`` or a URL button: paid, it is checked and credited exactly as the invoice
    message (the same payload, pre-checkout and successful payment). Raises what
    :func:`start_invoice` raises."""
    invoice, words = await start_invoice(
        session, settings, user, lang, pack=pack, plan_code=plan_code
    )
    return await invoices.invoice_link(bot, invoice, words)


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
    invoice, words = await start_invoice(session, settings, query.from_user, lang, pack=count)
    await query.answer()
    await invoices.send_invoice(bot, query.from_user.id, invoice, words)


async def plan_chosen(
    query: CallbackQuery,
    callback_data: PlanAction,
    session: AsyncSession,
    redis: Redis,
    settings: Settings,
    bot: Bot,
    lang: str,
) -> None:
    """⭐ on a plan's card: a pending purchase naming the plan, then its Stars invoice of the
    plan's price in ⭐ (rounded up). One invoice per card shown, however many taps."""
    if not settings.stars_enabled or not callback_data.key:
        await query.answer(t("bot-button-outdated", lang), show_alert=True)
        return
    if not await first_delivery(redis, f"plan-stars:{query.from_user.id}:{callback_data.key}"):
        await query.answer(t("plans-done-already", lang))
        return
    try:
        invoice, words = await start_invoice(
            session, settings, query.from_user, lang, plan_code=callback_data.code
        )
    except BillingError as exc:  # PlanNotFound, PlanNotForSale, past one invoice's ⭐
        await session.rollback()
        log.info("plan %s not sold for Stars: %s", callback_data.code, exc)
        await query.answer(t("plans-not-for-sale", lang), show_alert=True)
        return
    await query.answer()
    await invoices.send_invoice(bot, query.from_user.id, invoice, words)


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
    """Credited once by its charge id; the user sees the new balance (a plan's payment:
    what became of the plan)."""
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
    # The read ends here: an open transaction of this session would hold SQLite's write lock
    # (BEGIN IMMEDIATE) while mark_done_safely waits for it on another connection.
    await session.rollback()
    if credit.plan is not None:
        text = plan_payment_text(credit.plan, amount=credit.amount, language=lang)
    else:
        text = t(
            "bot-stars-credited",
            lang,
            stars=credit.stars,
            amount=format_rub(credit.amount),
            balance=balance,
        )
    await message.answer(text, reply_markup=menu)
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
    router.callback_query.register(plan_chosen, PlanAction.filter(F.action == "stars"))
    router.pre_checkout_query.register(pre_checkout)
    router.message.register(successful_payment, F.successful_payment)
    router.message.register(refunded_payment, F.refunded_payment)
    return router
