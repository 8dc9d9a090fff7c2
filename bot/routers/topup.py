"""💰 /balance, the top-up menu, "Другая сумма", the receipt e-mail and "Проверить оплату".

Money only comes in through billing.payments: ``start_yookassa_payment`` creates the payment
(bot.card_payment: our pending row first, then YooKassa with our idempotence key; the plan
card and the Mini App use the same function), ``reconcile_payment`` asks YooKassa and
credits once — the same path the webhook uses.
"""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message, User
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing import accounts, notices
from billing.models import NoticeOutcome, Payment
from billing.models import User as Account
from billing.payments import Outcome, reconcile_payment
from billing.prices import discounted, format_rub
from billing.settings import Settings
from billing.yookassa import GatewayError, GatewayUnavailable, YooKassaGateway
from bot.callbacks import CheckPayment, Menu, TopUp, TopUpAction
from bot.card_payment import begin_card_payment
from bot.inputs import Answer, parse_email, parse_rub_amount
from bot.keyboards import (
    back_to_menu,
    balance_keyboard,
    cancel_keyboard,
    topup_menu,
    with_webapp,
)
from bot.once import first_delivery
from bot.routers.plans import current_wallet
from bot.states import TopUpFlow
from bot.users import ensure_user, menu_for, money_args
from texts import wallet_texts
from texts.i18n import t
from texts.money_texts import canceled_text
from texts.plan_texts import plan_payment_text

log = logging.getLogger(__name__)


async def balance_text(
    session: AsyncSession, settings: Settings, user: User, lang: str, bot: Bot | None = None
) -> str:
    """Rubles, free operations "N из M", the subscription's quota (left / per period, the
    reset date) and the packages, as of now (what is due rolled over first)."""
    held = await current_wallet(session, settings, user, lang, bot)
    args = money_args(held, settings)
    lines = [t("bot-balance", lang, **args), *wallet_texts.balance_lines(held, lang)]
    if held.discount_percent:
        price = discounted(settings.price_kopecks, held.discount_percent)
        lines.append(
            t(
                "plans-balance-discount",
                lang,
                price=format_rub(price),
                percent=held.discount_percent,
            )
        )
    return "\n".join(lines)


async def cmd_balance(
    message: Message, session: AsyncSession, settings: Settings, lang: str
) -> None:
    """/balance: what the user has, and a top-up button."""
    assert message.from_user is not None
    text = await balance_text(session, settings, message.from_user, lang, message.bot)
    keyboard = with_webapp(balance_keyboard(lang), lang, settings.WEBAPP_URL, "balance")
    await message.answer(text, reply_markup=keyboard)


async def open_topup(
    query: CallbackQuery,
    session: AsyncSession,
    settings: Settings,
    lang: str,
    gateway: YooKassaGateway | None,
) -> None:
    """💰: the balance and the amounts to pick from (or why top-ups are unavailable)."""
    await query.answer()
    if not isinstance(query.message, Message):
        return
    text = await balance_text(session, settings, query.from_user, lang, query.bot)
    if gateway is None and not settings.stars_enabled:
        await query.message.answer(
            text + "\n\n" + t("bot-topup-not-configured", lang), reply_markup=back_to_menu(lang)
        )
        return
    await query.message.answer(
        text + "\n\n" + t("bot-topup-choose", lang),
        reply_markup=topup_menu(lang, settings, yookassa=gateway is not None),
    )


async def cancel_topup(
    query: CallbackQuery,
    state: FSMContext,
    session: AsyncSession,
    settings: Settings,
    lang: str,
) -> None:
    """ "Отмена": leave the top-up (and its amount or e-mail step)."""
    if await state.get_state() in (TopUpFlow.amount.state, TopUpFlow.email.state):
        await state.clear()
    await query.answer()
    if isinstance(query.message, Message):
        try:
            await query.message.edit_text(
                t("bot-topup-canceled", lang),
                reply_markup=await menu_for(session, settings, query.from_user, lang),
            )
        except TelegramBadRequest as exc:  # pressed twice: "message is not modified"
            log.info("cancel not shown: %s", exc)


async def ask_custom_amount(
    query: CallbackQuery,
    state: FSMContext,
    settings: Settings,
    lang: str,
    gateway: YooKassaGateway | None,
) -> None:
    """ "Другая сумма": wait for a whole number of rubles."""
    if gateway is None:
        await query.answer(t("bot-topup-not-configured", lang), show_alert=True)
        return
    await state.set_state(TopUpFlow.amount)
    await query.answer()
    if isinstance(query.message, Message):
        await query.message.answer(
            t(
                "bot-topup-ask-amount",
                lang,
                min=settings.TOPUP_MIN_RUB,
                max=format_rub(settings.TOPUP_MAX_RUB * 100),
            ),
            reply_markup=cancel_keyboard(lang),
        )


async def preset_chosen(
    query: CallbackQuery,
    callback_data: TopUp,
    state: FSMContext,
    redis: Redis,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    lang: str,
    gateway: YooKassaGateway | None,
) -> None:
    """A preset amount, looked up by its index: a forged index is refused."""
    presets = settings.TOPUP_PRESETS_RUB
    if not 0 <= callback_data.index < len(presets):
        log.warning(
            "user %s sent a forged top-up index %r", query.from_user.id, callback_data.index
        )
        await query.answer(t("bot-button-outdated", lang), show_alert=True)
        return
    if gateway is None:
        await query.answer(t("bot-topup-not-configured", lang), show_alert=True)
        return
    # A re-delivered press was answered the first time (answering again is an error).
    if not await first_delivery(redis, f"callback:{query.id}"):
        return
    await query.answer()
    if isinstance(query.message, Message):
        await begin_card_payment(
            query.message,
            query.from_user,
            amount_rub=presets[callback_data.index],
            state=state,
            session=session,
            sessionmaker=sessionmaker,
            settings=settings,
            lang=lang,
            gateway=gateway,
        )


async def custom_amount(
    message: Message,
    state: FSMContext,
    redis: Redis,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    lang: str,
    gateway: YooKassaGateway | None,
) -> None:
    """The custom amount: anything but a whole number in range gets a reply, and the
    state stays (a photo, an emoji, "10,5", "1e9" …)."""
    if not await first_delivery(redis, f"message:{message.chat.id}:{message.message_id}"):
        return
    amount = parse_rub_amount(
        message.text, minimum=settings.TOPUP_MIN_RUB, maximum=settings.TOPUP_MAX_RUB
    )
    if isinstance(amount, Answer):
        args = dict(amount.args, max=format_rub(settings.TOPUP_MAX_RUB * 100))
        await message.answer(t(amount.key, lang, **args), reply_markup=cancel_keyboard(lang))
        return
    if gateway is None:
        await state.clear()
        await message.answer(t("bot-topup-not-configured", lang), reply_markup=back_to_menu(lang))
        return
    assert message.from_user is not None
    await begin_card_payment(
        message,
        message.from_user,
        amount_rub=amount,
        state=state,
        session=session,
        sessionmaker=sessionmaker,
        settings=settings,
        lang=lang,
        gateway=gateway,
    )


async def receipt_email(
    message: Message,
    state: FSMContext,
    redis: Redis,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    lang: str,
    gateway: YooKassaGateway | None,
) -> None:
    """The e-mail for 54-FZ receipts: asked once, then remembered."""
    if not await first_delivery(redis, f"message:{message.chat.id}:{message.message_id}"):
        return
    email = parse_email(message.text)
    if email is None:
        await message.answer(
            t("bot-topup-email-invalid", lang), reply_markup=cancel_keyboard(lang)
        )
        return
    assert message.from_user is not None
    account = await ensure_user(session, settings, message.from_user, lang)
    await accounts.set_email(session, user_id=account.id, email=email)
    await session.commit()
    kept = await state.get_data()
    plan_code = kept.get("plan_code")
    if isinstance(plan_code, str) and gateway is not None:  # the e-mail was for a plan
        await begin_card_payment(
            message,
            message.from_user,
            plan_code=plan_code,
            state=state,
            session=session,
            sessionmaker=sessionmaker,
            settings=settings,
            lang=lang,
            gateway=gateway,
        )
        return
    amount = kept.get("amount_rub")
    if not isinstance(amount, int) or gateway is None:
        await state.clear()
        await message.answer(t("bot-topup-email-saved", lang), reply_markup=back_to_menu(lang))
        return
    await begin_card_payment(
        message,
        message.from_user,
        amount_rub=amount,
        state=state,
        session=session,
        sessionmaker=sessionmaker,
        settings=settings,
        lang=lang,
        gateway=gateway,
    )


async def _owner_telegram_id(session: AsyncSession, payment_id: int) -> int | None:
    return await session.scalar(
        select(Account.telegram_id)
        .join(Payment, Payment.user_id == Account.id)
        .where(Payment.id == payment_id)
    )


async def check_payment(
    query: CallbackQuery,
    callback_data: CheckPayment,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    lang: str,
    gateway: YooKassaGateway | None,
) -> None:
    """ "Проверить оплату": ask YooKassa and credit through the webhook's once-only path."""
    owner = await _owner_telegram_id(session, callback_data.payment_id)
    await session.rollback()
    if owner is None or owner != query.from_user.id:
        await query.answer(t("bot-button-outdated", lang), show_alert=True)
        return
    if gateway is None:
        await query.answer(t("bot-topup-not-configured", lang), show_alert=True)
        return
    try:
        result = await reconcile_payment(
            sessionmaker, gateway, payment_id=callback_data.payment_id
        )
    except GatewayUnavailable as exc:
        log.warning("payment %s: YooKassa unavailable on check: %s", callback_data.payment_id, exc)
        await query.answer(t("bot-payment-check-later", lang), show_alert=True)
        return
    except GatewayError as exc:
        log.error("payment %s: check failed: %s", callback_data.payment_id, exc)
        await query.answer(t("bot-payment-problem", lang), show_alert=True)
        return
    message = query.message if isinstance(query.message, Message) else None
    amount = format_rub(result.amount)
    balance = format_rub(result.balance_after or 0)
    if result.outcome is Outcome.CREDITED:
        await query.answer(t("bot-payment-credited-short", lang, amount=amount))
        if message is not None:
            text = (
                plan_payment_text(result.plan, amount=result.amount, language=lang)
                if result.plan is not None  # a plan's payment: what became of the plan
                else t("bot-payment-credited", lang, amount=amount, balance=balance)
            )
            menu = await menu_for(session, settings, query.from_user, lang)
            await message.edit_text(text, reply_markup=menu)
            # Told here: the web's maintenance pass must not send the "credited" message.
            await notices.mark_done_safely(
                sessionmaker, notices.credited_key(callback_data.payment_id), NoticeOutcome.SENT
            )
    elif result.outcome is Outcome.ALREADY_CREDITED:
        await query.answer(t("bot-payment-already", lang, balance=balance), show_alert=True)
    elif result.outcome in (Outcome.PENDING, Outcome.WAITING_FOR_CAPTURE):
        await query.answer(t("bot-payment-pending", lang), show_alert=True)
    elif result.outcome is Outcome.CANCELED:
        await query.answer()
        if message is not None:
            # Why, in plain words: the webhook's message with the reason is not sent when
            # this check told the user first.
            await message.edit_text(
                canceled_text(
                    amount=result.amount, reason=result.cancellation_reason, language=lang
                ),
                reply_markup=balance_keyboard(lang),
            )
            if result.detail == "canceled now":
                await notices.mark_done_safely(
                    sessionmaker,
                    notices.canceled_key(callback_data.payment_id),
                    NoticeOutcome.SENT,
                )
    else:
        log.error("payment %s: %s (%s)", callback_data.payment_id, result.outcome, result.detail)
        await query.answer(t("bot-payment-problem", lang), show_alert=True)


def create_router() -> Router:
    """A fresh router (a dispatcher per test or process: a router has one parent)."""
    router = Router(name="topup")
    router.message.register(cmd_balance, Command("balance"))
    router.callback_query.register(open_topup, Menu.filter(F.action == "topup"))
    router.callback_query.register(cancel_topup, TopUpAction.filter(F.action == "cancel"))
    router.callback_query.register(ask_custom_amount, TopUpAction.filter(F.action == "custom"))
    router.callback_query.register(preset_chosen, TopUp.filter())
    router.message.register(custom_amount, TopUpFlow.amount)
    router.message.register(receipt_email, TopUpFlow.email)
    router.callback_query.register(check_payment, CheckPayment.filter())
    return router
