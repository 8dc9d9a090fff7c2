"""/privacy and /paysupport (Telegram's terms require both of a bot that takes payments)."""

from __future__ import annotations

import html
import logging

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from billing import payments
from billing.prices import format_rub
from billing.settings import Settings
from bot.keyboards import back_to_menu
from bot.states import SupportFlow
from bot.users import ensure_user
from texts import wallet_texts
from texts.i18n import t

log = logging.getLogger(__name__)
RECENT = 5


async def cmd_privacy(message: Message, settings: Settings, lang: str) -> None:
    """The operator's privacy text (sent as plain text: it is theirs, not our markup), or
    the default one that says what Media Lab stores and for how long."""
    own = settings.privacy_text()
    if own:
        await message.answer(own, parse_mode=None, reply_markup=back_to_menu(lang))
    else:
        await message.answer(t("bot-privacy", lang), reply_markup=back_to_menu(lang))


def _payment_lines(recent: list[payments.PaymentSummary], lang: str) -> str:
    return "\n".join(
        t(
            "bot-paysupport-payment",
            lang,
            id=p.id,
            date=wallet_texts.datetime_text(p.created_at, lang),
            amount=format_rub(p.amount),
            status=t(f"bot-paysupport-status-{p.status}", lang),
            ref=html.escape(p.provider_id or "—"),
        )
        for p in recent
    )


async def cmd_paysupport(
    message: Message, state: FSMContext, session: AsyncSession, settings: Settings, lang: str
) -> None:
    """The user's recent payments, how to reach the operator, and an offer to pass their
    next message on to the admins (with the payment ids)."""
    assert message.from_user is not None
    account = await ensure_user(session, settings, message.from_user, lang)
    recent = await payments.recent_payments(session, user_id=account.id, limit=RECENT)
    text = t(
        "bot-paysupport",
        lang,
        payments=_payment_lines(recent, lang) if recent else t("bot-paysupport-none", lang),
    )
    if settings.SUPPORT_CONTACT:
        contact = html.escape(settings.SUPPORT_CONTACT)
        text += "\n\n" + t("bot-paysupport-contact", lang, contact=contact)
    await state.clear()
    if settings.ADMIN_IDS:
        await state.set_state(SupportFlow.message)
        text += "\n\n" + t("bot-paysupport-ask", lang)
    await message.answer(text, reply_markup=back_to_menu(lang))


async def support_message(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    settings: Settings,
    bot: Bot,
    lang: str,
) -> None:
    """The message after /paysupport: sent on to every admin with the user and the ids of
    their recent payments; the user is told whether it reached anyone."""
    assert message.from_user is not None
    await state.clear()
    account = await ensure_user(session, settings, message.from_user, lang)
    recent = await payments.recent_payments(session, user_id=account.id, limit=RECENT)
    user = message.from_user
    body = message.text or message.caption or t("admin-paysupport-no-text", None)
    ids = ", ".join(
        f"#{p.id}" + (f" ({html.escape(p.provider_id)})" if p.provider_id else "") for p in recent
    )
    text = t(
        "admin-paysupport",
        None,
        telegram_id=user.id,
        name=html.escape(user.full_name),
        username=html.escape(f"@{user.username}" if user.username else "—"),
        payments=ids or "—",
        text=html.escape(body),
    )
    delivered = 0
    for admin_id in settings.ADMIN_IDS:
        try:
            await bot.send_message(admin_id, text)
            delivered += 1
        except Exception as exc:  # noqa: BLE001 - one unreachable admin must not stop the rest
            log.warning("paysupport: could not reach admin %s: %s", admin_id, exc)
    key = "bot-paysupport-sent" if delivered else "bot-paysupport-not-sent"
    await message.answer(t(key, lang), reply_markup=back_to_menu(lang))


def create_router() -> Router:
    """A fresh router (a dispatcher per test or process: a router has one parent)."""
    router = Router(name="support")
    router.message.register(cmd_privacy, Command("privacy"))
    router.message.register(cmd_paysupport, Command("paysupport"))
    router.message.register(support_message, SupportFlow.message)
    return router
