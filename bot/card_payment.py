"""A card payment started in the chat: a top-up of the menu (bot.routers.topup) or a plan's
price (bot.routers.plans). Both go through ``billing.payments.start_yookassa_payment``, the
one function the Mini App calls too; here only the chat's side: the receipt e-mail step
and the messages."""

from __future__ import annotations

import logging

from aiogram.fsm.context import FSMContext
from aiogram.types import Message, User
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing import wallet
from billing.errors import InvalidAmount
from billing.payments import ReceiptEmailNeeded, TopUpUnavailable, start_yookassa_payment
from billing.plans import PlanNotForSale, PlanNotFound
from billing.prices import format_rub
from billing.settings import Settings
from billing.yookassa import GatewayError, YooKassaGateway
from bot.keyboards import back_to_menu, cancel_keyboard, payment_keyboard
from bot.states import TopUpFlow
from bot.users import ensure_user
from texts.i18n import t

log = logging.getLogger(__name__)


async def begin_card_payment(
    message: Message,
    user: User,
    *,
    amount_rub: int | None = None,
    plan_code: str | None = None,
    state: FSMContext,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    lang: str,
    gateway: YooKassaGateway,
) -> None:
    """Create the payment and send its link; with no receipt e-mail yet, ask for it first
    (the e-mail step comes back here with what was asked for)."""
    account = await ensure_user(session, settings, user, lang)
    pending: Message | None = None
    description = None
    if amount_rub is not None:
        description = t("bot-topup-description", lang, amount=format_rub(amount_rub * 100))
        if not (settings.YOOKASSA_RECEIPTS_ENABLED and not account.email):
            pending = await message.answer(
                t("bot-topup-creating", lang, amount=format_rub(amount_rub * 100))
            )
    try:
        started = await start_yookassa_payment(
            sessionmaker,
            gateway,
            settings,
            user_id=account.id,
            amount_rub=amount_rub,
            plan_code=plan_code,
            description=description,
        )
    except ReceiptEmailNeeded:
        await state.set_state(TopUpFlow.email)
        await state.update_data(amount_rub=amount_rub, plan_code=plan_code)
        await message.answer(t("bot-topup-ask-email", lang), reply_markup=cancel_keyboard(lang))
        return
    except (PlanNotFound, PlanNotForSale):
        await state.clear()
        await _say(message, pending, t("plans-not-for-sale", lang), back_to_menu(lang))
        return
    except (InvalidAmount, TopUpUnavailable, GatewayError) as exc:
        await state.clear()
        log.error(
            "card payment (%s) for user %s failed: %s", plan_code or amount_rub, account.id, exc
        )
        await _say(message, pending, t("bot-topup-unavailable", lang), back_to_menu(lang))
        return
    await state.clear()
    keyboard = payment_keyboard(lang, started.confirmation_url, started.payment_id)
    if plan_code is None:
        text = t("bot-topup-invoice", lang, amount=format_rub(started.amount))
    else:
        found = [p for p in await wallet.catalogue(session) if p.code == plan_code]
        await session.rollback()
        name = found[0].name(lang) if found else plan_code
        text = t("plans-invoice", lang, price=format_rub(started.amount), name=name)
    await _say(message, pending, text, keyboard)


async def _say(message: Message, pending: Message | None, text: str, keyboard: object) -> None:
    if pending is not None:
        await pending.edit_text(text, reply_markup=keyboard)  # type: ignore[arg-type]
    else:
        await message.answer(text, reply_markup=keyboard)  # type: ignore[arg-type]
