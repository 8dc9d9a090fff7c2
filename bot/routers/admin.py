"""Admin commands: /user, /grant, /debit, /audit, /stats, the plans catalogue (/plans_admin,
/plan_add, /plan_edit, /plan_archive) and /refund (a YooKassa payment back to the card) — for
settings.ADMIN_IDS only.

The router's filter lets only admins' messages in; for anyone else the router does not
exist and the message goes on to the other routers (the ordinary "pick a mode" answer),
so the commands are not revealed. Included first, so its commands win over the modes.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.types import Message, TelegramObject, User
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing import accounts, bounds, plans, refunds, stars, stats
from billing.accounts import UserState
from billing.audit import audit
from billing.bounds import BadNumber, parse_id
from billing.errors import AmountOutOfRange, BillingError, InsufficientFunds
from billing.models import LedgerEntry, Plan, PlanKind, utcnow
from billing.prices import format_rub
from billing.settings import Settings
from billing.yookassa import GatewayError, YooKassaGateway
from texts.i18n import t
from texts.money_texts import claimed_notice_words
from texts.stats_texts import stats_text
from tg.notices import send_fresh

log = logging.getLogger(__name__)

RECENT_OPERATIONS = 10
AUDIT_LINES = 20
AUDIT_LINE_CHARS = 300  # a problem line is cut so 20 of them fit a Telegram message
REASON_CHARS = 500
PLANS_CHUNK_CHARS = 3500  # a /plans_admin message, under Telegram's 4096


class AdminInputError(ValueError):
    """Bad command arguments; ``key`` is the ftl message id of the answer, ``args`` its args."""

    def __init__(self, key: str, **args: object) -> None:
        super().__init__(key)
        self.key = key
        self.args_ = args


def parse_telegram_id(value: str) -> int:
    number = parse_id(value)
    if number is None:
        raise AdminInputError("admin-bad-telegram-id", value=html.escape(value[:40]))
    return number


def parse_kopecks(value: str, *, limit: int) -> int:
    """A positive amount in rubles with at most two decimals ("50", "9.90", "9,9") in kopecks,
    at most ``limit`` (settings.admin_adjust_max_kopecks)."""
    shown = html.escape(value[:40])
    if value[:1] in "-−":
        raise AdminInputError("admin-amount-negative", value=shown)
    try:
        kopecks = bounds.parse_kopecks(value, limit=limit)
    except BadNumber as exc:
        if exc.reason == "out_of_range":
            raise AdminInputError("admin-amount-too-big", limit=format_rub(limit)) from None
        if exc.reason == "decimals":
            raise AdminInputError("admin-amount-decimals", value=shown) from None
        raise AdminInputError("admin-amount-not-number", value=shown) from None
    if kopecks <= 0:
        raise AdminInputError("admin-amount-zero", value=shown)
    return kopecks


@dataclass(frozen=True)
class AdjustRequest:
    telegram_id: int
    kopecks: int
    reason: str


def parse_adjust(command: str, args: str | None, *, limit: int) -> AdjustRequest:
    """`<telegram_id> <rubles> <reason...>` of /grant and /debit; ``limit`` in kopecks."""
    parts = (args or "").split(maxsplit=2)
    if len(parts) < 3 or not parts[2].strip():
        raise AdminInputError("admin-adjust-usage", command=command)
    reason = parts[2].strip()
    if len(reason) > REASON_CHARS:
        raise AdminInputError("admin-reason-too-long", limit=REASON_CHARS)
    return AdjustRequest(parse_telegram_id(parts[0]), parse_kopecks(parts[1], limit=limit), reason)


async def is_admin(event: TelegramObject, settings: Settings) -> bool:
    """The router's filter: the sender is in ADMIN_IDS."""
    user: User | None = getattr(event, "from_user", None)
    return user is not None and user.id in settings.ADMIN_IDS


def _operation_line(op: dict[str, object], lang: str) -> str:
    created = op["created_at"]
    date = created.strftime("%Y-%m-%d %H:%M") if hasattr(created, "strftime") else str(created)
    return t(
        "admin-user-operation",
        lang,
        id=str(op["id"]),
        type=str(op["type"]),
        status=str(op["status"]),
        funding=str(op["funding"]),
        price=format_rub(int(op["price"])),  # type: ignore[call-overload]
        date=date,
    )


async def cmd_user(
    message: Message, command: CommandObject, session: AsyncSession, lang: str
) -> None:
    """/user <telegram_id>: balance, free operations and the last operations."""
    try:
        telegram_id = parse_telegram_id((command.args or "").strip())
    except AdminInputError:
        await message.answer(t("admin-user-usage", lang))
        return
    user = await accounts.find_user_by_telegram_id(session, telegram_id)
    if user is None:
        await message.answer(t("admin-unknown-user", lang, telegram_id=str(telegram_id)))
        return
    summary = await accounts.get_summary(session, user_id=user.id, recent=RECENT_OPERATIONS)
    lines = [_operation_line(op, lang) for op in summary.recent]
    await message.answer(
        t(
            "admin-user",
            lang,
            telegram_id=str(user.telegram_id),
            user_id=str(user.id),
            language=user.language or "-",
            balance=format_rub(user.balance),
            free_left=user.free_left,
            free_total=user.free_granted,
            operations="\n".join(lines) if lines else t("admin-user-no-operations", lang),
        )
    )


async def _adjust(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    settings: Settings,
    bot: Bot,
    lang: str,
    *,
    sign: int,
) -> None:
    name = command.command
    try:
        request = parse_adjust(name, command.args, limit=settings.admin_adjust_max_kopecks)
    except AdminInputError as exc:
        await message.answer(t(exc.key, lang, **exc.args_))  # type: ignore[arg-type]
        return
    user = await accounts.find_user_by_telegram_id(session, request.telegram_id)
    if user is None:
        await message.answer(t("admin-unknown-user", lang, telegram_id=str(request.telegram_id)))
        return
    assert message.from_user is not None
    # The Telegram update is the natural key: a re-delivered /grant applies once.
    key = f"admin-adjust:{message.chat.id}:{message.message_id}"
    try:
        state = await accounts.adjust(
            session,
            user_id=user.id,
            amount=sign * request.kopecks,
            reason=request.reason,
            admin_id=message.from_user.id,
            key=key,
            max_amount=settings.admin_adjust_max_kopecks,
        )
        await session.commit()
    except AmountOutOfRange as exc:
        await session.rollback()
        log.info("admin %s: %s refused: %s", message.from_user.id, name, exc)
        await message.answer(t("admin-amount-out-of-range", lang))
        return
    except InsufficientFunds as exc:
        await session.rollback()
        await message.answer(
            t(
                "admin-debit-too-much",
                lang,
                amount=format_rub(request.kopecks),
                balance=format_rub(exc.balance),
            )
        )
        return
    except BillingError as exc:
        await session.rollback()
        log.info("admin %s: %s refused: %s", message.from_user.id, name, exc)
        await message.answer(t("admin-adjust-refused", lang, error=html.escape(str(exc))))
        return
    except IntegrityError:
        await session.rollback()
        if await session.scalar(select(LedgerEntry.id).where(LedgerEntry.idempotency_key == key)):
            log.info("duplicate admin update %s: already applied", key)
            await message.answer(t("admin-adjust-duplicate", lang))
            return
        raise
    log.info(
        "admin %s: %s %s kopecks for user %s (%s)",
        message.from_user.id,
        name,
        request.kopecks,
        user.telegram_id,
        key,
    )
    await message.answer(_confirmation(name, request, state, lang))
    await _notify(bot, user, name, request)


def _confirmation(name: str, request: AdjustRequest, state: UserState, lang: str) -> str:
    return t(
        f"admin-{name}-done",
        lang,
        amount=format_rub(request.kopecks),
        telegram_id=str(state.telegram_id),
        balance=format_rub(state.balance),
        reason=html.escape(request.reason),
    )


async def _notify(bot: Bot, user: UserState, name: str, request: AdjustRequest) -> None:
    """Tell the affected user; failing to (blocked bot, network) changes nothing booked."""
    text = t(
        f"admin-{name}-notice",
        user.language,
        amount=format_rub(request.kopecks),
        reason=html.escape(request.reason),
    )
    try:
        await bot.send_message(user.telegram_id, text)
    except Exception as exc:  # noqa: BLE001 - the adjustment is committed either way
        log.warning("could not notify user %s of an adjustment: %s", user.telegram_id, exc)


async def cmd_grant(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    settings: Settings,
    bot: Bot,
    lang: str,
) -> None:
    """/grant <telegram_id> <rubles> <reason...>: add money with a reason."""
    await _adjust(message, command, session, settings, bot, lang, sign=1)


async def cmd_debit(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    settings: Settings,
    bot: Bot,
    lang: str,
) -> None:
    """/debit <telegram_id> <rubles> <reason...>: take money (never below zero)."""
    await _adjust(message, command, session, settings, bot, lang, sign=-1)


async def cmd_audit(message: Message, session: AsyncSession, lang: str) -> None:
    """/audit: the ledger audit, "clean" or its first problems."""
    problems = await audit(session)
    await session.rollback()  # read only; end the transaction before the answer
    if not problems:
        await message.answer(t("admin-audit-clean", lang))
        return
    shown = [html.escape(p[:AUDIT_LINE_CHARS]) for p in problems[:AUDIT_LINES]]
    await message.answer(
        t(
            "admin-audit-problems",
            lang,
            count=len(problems),
            shown=len(shown),
            problems="\n".join(f"• {line}" for line in shown),
        )
    )


async def cmd_stats(
    message: Message,
    session: AsyncSession,
    settings: Settings,
    lang: str,
    clock: Callable[[], datetime] = utcnow,
) -> None:
    """/stats: users, revenue by way of payment and by day, operations by type, open
    payments, money owed (billing.stats; days in BOT_TIMEZONE). ``clock``: the dispatcher's
    "clock" if one is set (tests pin the day), else the time now."""
    figures = await stats.collect(session, zone=settings.zone, now=clock())
    await session.rollback()  # read only; end the transaction before the answer
    await message.answer(stats_text(figures, lang))


def _plan_line(plan: Plan, lang: str) -> str:
    if plan.kind == PlanKind.SUBSCRIPTION:
        what = t(
            "admin-plan-what-subscription",
            lang,
            units=str(plan.units),
            period=t(f"admin-plan-period-{plan.period}", lang),
            trial=str(plan.trial_days),
        )
    elif plan.expires_days:
        what = t(
            "admin-plan-what-package", lang, units=str(plan.units), days=str(plan.expires_days)
        )
    else:
        what = t("admin-plan-what-package-forever", lang, units=str(plan.units))
    flags = []
    if plan.is_default:
        flags.append(t("admin-plan-flag-default", lang))
    if plan.archived_at is not None:
        flags.append(t("admin-plan-flag-archived", lang))
    return t(
        "admin-plan-line",
        lang,
        code=html.escape(plan.code),
        name_ru=html.escape(plan.name_ru),
        name_en=html.escape(plan.name_en),
        price=format_rub(plan.price),
        what=what,
        discount=str(plan.discount_percent),
        free=str(plan.free_operations),
        unlocks=t("admin-plan-unlocks-all", lang)
        if plan.unlocks is None
        else html.escape(", ".join(plan.unlocks)) or "—",
        sort=str(plan.sort_order),
        flags=" ".join(flags),
    )


def _plan_error(exc: BillingError, lang: str) -> str:
    if isinstance(exc, plans.PlanNotFound):
        return t("admin-plan-unknown", lang, code=html.escape(str(exc.code)[:40]))
    if isinstance(exc, plans.PlanInvalid):
        args = {k: html.escape(str(v))[:200] for k, v in exc.params.items()}
        return t(f"admin-plan-error-{exc.code}", lang, **args)
    return t("admin-plan-refused", lang, error=html.escape(str(exc)))


async def cmd_plans_admin(message: Message, session: AsyncSession, lang: str) -> None:
    """/plans_admin: the whole catalogue, archived plans too."""
    lines = [
        _plan_line(plan, lang) for plan in await plans.list_plans(session, include_archived=True)
    ]
    await session.rollback()
    # A long catalogue goes in several messages (Telegram takes 4096 characters at most).
    chunks: list[list[str]] = [[]]
    for line in lines:
        if chunks[-1] and sum(len(x) + 2 for x in chunks[-1]) + len(line) > PLANS_CHUNK_CHARS:
            chunks.append([])
        chunks[-1].append(line)
    for chunk in chunks:
        await message.answer(t("admin-plans", lang, plans="\n\n".join(chunk)))


async def cmd_plan_edit(
    message: Message, command: CommandObject, session: AsyncSession, lang: str
) -> None:
    """/plan_edit <code> field=value ...: change a plan (prices in rubles); /plan_add <code>
    kind=... field=value ...: a new plan, the same fields (``billing.plans.parse_fields``)."""
    adding = command.command == "plan_add"
    code, _, rest = (command.args or "").strip().partition(" ")
    if not code or not rest.strip():
        await message.answer(
            t("admin-plan-add-usage" if adding else "admin-plan-edit-usage", lang)
        )
        return
    try:
        fields = plans.parse_fields(rest, adding=adding)
        if adding:
            plan = await plans.add_plan(session, code=code, **fields)
        else:
            plan = await plans.edit_plan(session, code, **fields)
        await session.commit()
    except BillingError as exc:
        await session.rollback()
        await message.answer(_plan_error(exc, lang))
        return
    assert message.from_user is not None
    log.info(
        "admin %s: plan %s %s: %s",
        message.from_user.id,
        code,
        "added" if adding else "edited",
        sorted(fields),
    )
    await message.answer(
        t("admin-plan-added" if adding else "admin-plan-saved", lang, plan=_plan_line(plan, lang))
    )


async def cmd_plan_archive(
    message: Message, command: CommandObject, session: AsyncSession, lang: str
) -> None:
    """/plan_archive <code>: take a plan off sale (holders keep it until it ends)."""
    code = (command.args or "").strip()
    if not code or " " in code:
        await message.answer(t("admin-plan-archive-usage", lang))
        return
    try:
        was = (await plans.get_plan(session, code)).archived_at
        plan = await plans.archive_plan(session, code)
        await session.commit()
    except BillingError as exc:
        await session.rollback()
        await message.answer(_plan_error(exc, lang))
        return
    assert message.from_user is not None
    log.info("admin %s: plan %s archived", message.from_user.id, code)
    key = "admin-plan-already-archived" if was else "admin-plan-archived"
    await message.answer(t(key, lang, plan=_plan_line(plan, lang)))


def _plain_rubles(kopecks: int) -> str:
    """Rubles as the command takes them back: "50", "9.90"."""
    rub, kop = divmod(kopecks, 100)
    return f"{rub}.{kop:02d}" if kop else str(rub)


def _refund_refused(exc: refunds.RefundRefused, lang: str) -> str:
    params = {
        k: format_rub(v) if k in ("amount", "left") and isinstance(v, int) else html.escape(str(v))
        for k, v in exc.params.items()
    }
    return t(f"admin-refund-error-{exc.code}", lang, **params)


async def tell_user(
    sessionmaker: async_sessionmaker[AsyncSession],
    bot: Bot,
    settings: Settings,
    keys: tuple[str, ...],
) -> None:
    """The user's messages the refund recorded (the payment-message outbox), sent now
    (:func:`tg.notices.send_fresh`: each claimed first, so a worker's pass or another sender
    then sends nothing twice; sent in the user's language with the words the web server uses;
    marked). One that fails stays claimed; a worker's maintenance pass sends it after
    PAYMENT_NOTICE_GRACE_SECONDS."""
    grace = timedelta(seconds=settings.PAYMENT_NOTICE_GRACE_SECONDS)
    try:
        await send_fresh(sessionmaker, bot, keys, claimed_notice_words, grace=grace)
    except Exception as exc:  # noqa: BLE001 - the refund is committed either way
        log.warning("notices %s not sent now (a worker sends them later): %s", keys, exc)


async def cmd_refund(
    message: Message,
    command: CommandObject,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    bot: Bot,
    lang: str,
    gateway: YooKassaGateway | None = None,
) -> None:
    """/refund <payment> [rubles] [again]: a YooKassa payment (or part of it) back to the card
    through YooKassa's refunds API, debited from the balance (billing.refunds)."""
    parts = (command.args or "").split()
    again = bool(parts) and parts[-1].lower() == "again"
    if again:
        parts = parts[:-1]
    if not 1 <= len(parts) <= 2:
        await message.answer(t("admin-refund-usage", lang))
        return
    ref = refunds.payment_ref(parts[0]) or stars_charge_ref(parts[0])
    if ref is None:
        await message.answer(t("admin-refund-bad-payment", lang, value=html.escape(parts[0][:40])))
        return
    try:
        amount = parse_kopecks(parts[1], limit=bounds.INT64_MAX) if len(parts) == 2 else None
    except AdminInputError as exc:
        await message.answer(t(exc.key, lang, **exc.args_))  # type: ignore[arg-type]
        return
    assert message.from_user is not None
    async with sessionmaker() as session:
        paid_in_stars = await stars.find_payment(
            session,
            payment_id=ref if isinstance(ref, int) else None,
            charge_id=None if isinstance(ref, int) else parts[0],
        )
    if paid_in_stars is not None:
        await _refund_stars(message, paid_in_stars, amount, sessionmaker, settings, bot, lang)
        return
    if gateway is None:
        await message.answer(t("admin-refund-no-yookassa", lang))
        return
    try:
        done = await refunds.refund_payment(
            sessionmaker,
            gateway,
            payment=ref,
            amount=amount,
            requested_by=f"admin:{message.from_user.id}",
            again=again,
        )
    except refunds.RefundRefused as exc:
        log.info("admin %s: /refund %s refused: %s", message.from_user.id, ref, exc)
        await message.answer(_refund_refused(exc, lang))
        return
    except GatewayError as exc:
        log.warning("admin %s: /refund %s: YooKassa: %s", message.from_user.id, ref, exc)
        await message.answer(t("admin-refund-unavailable", lang, error=html.escape(str(exc))))
        return
    log.info(
        "admin %s: /refund %s: %s (request %s)",
        message.from_user.id,
        ref,
        done.outcome.value,
        done.request_id,
    )
    key = f"admin-refund-{done.outcome.value}"
    if done.outcome is refunds.RefundDone.REFUNDED and done.balance_after < 0:
        key = "admin-refund-refunded-debt"
    await message.answer(
        t(
            key,
            lang,
            amount=format_rub(done.amount),
            rubles=_plain_rubles(done.amount),
            payment=str(done.payment_id),
            refund=html.escape(done.yookassa_refund_id or "—"),
            telegram_id=str(done.telegram_id),
            balance=format_rub(done.balance_after),
            reason=html.escape(done.detail),
        )
    )
    await tell_user(sessionmaker, bot, settings, done.notice_keys)


_CHARGE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def stars_charge_ref(value: str) -> str | None:
    """A Telegram charge id as typed (longer than YooKassa's ids may be)."""
    value = value.strip()
    return value if _CHARGE_ID.fullmatch(value) else None


async def _refund_stars(
    message: Message,
    payment: stars.StarsPayment,
    amount: int | None,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    bot: Bot,
    lang: str,
) -> None:
    """A Stars payment back to the user with refundStarPayment (whole: Telegram refunds a
    charge in full), then the same debit as a YooKassa refund (billing.stars.record_refund).
    Idempotent: CHARGE_ALREADY_REFUNDED means a refund went through before, so the debit
    is recorded (once) all the same."""
    assert message.from_user is not None
    args = {
        "payment": str(payment.payment_id),
        "stars": str(payment.stars),
        "amount": format_rub(payment.amount),
        "telegram_id": str(payment.telegram_id),
    }
    if amount is not None and amount != payment.amount:
        await message.answer(t("admin-refund-stars-whole", lang, **args))
        return
    asked = payment.refunded_amount < payment.amount  # else: refunded and debited before
    if asked:
        try:
            await bot.refund_star_payment(
                user_id=payment.telegram_id, telegram_payment_charge_id=payment.charge_id
            )
        except TelegramBadRequest as exc:
            if "CHARGE_ALREADY_REFUNDED" not in exc.message:
                log.warning(
                    "admin %s: refundStarPayment %s: %s",
                    message.from_user.id,
                    payment.payment_id,
                    exc,
                )
                await message.answer(
                    t("admin-refund-stars-refused", lang, error=html.escape(exc.message), **args)
                )
                return
            log.info("stars payment %s: Telegram says already refunded", payment.payment_id)
        except TelegramAPIError as exc:
            log.warning(
                "admin %s: refundStarPayment %s: %s", message.from_user.id, payment.payment_id, exc
            )
            await message.answer(
                t("admin-refund-stars-unavailable", lang, error=html.escape(str(exc)), **args)
            )
            return
    done = await stars.record_refund(sessionmaker, charge_id=payment.charge_id)
    balance = format_rub(done.balance_after or 0)
    log.info(
        "admin %s: /refund of stars payment %s: %s",
        message.from_user.id,
        payment.payment_id,
        done.outcome.value,
    )
    if asked:
        # Refunded now (or Telegram had refunded it and we had not debited): done, whether
        # this call or the refunded_payment update Telegram sent meanwhile recorded the debit
        # (that one then tells the user).
        debt = (done.balance_after or 0) < 0
        key = "admin-refund-stars-done-debt" if debt else "admin-refund-stars-done"
        await message.answer(t(key, lang, balance=balance, **args))
        if done.outcome is stars.RefundOutcome.RECORDED and done.notice_key is not None:
            await tell_user(sessionmaker, bot, settings, (done.notice_key,))
    else:
        await message.answer(t("admin-refund-stars-already", lang, balance=balance, **args))


def create_router() -> Router:
    """A fresh router (a dispatcher per test or process: a router has one parent)."""
    router = Router(name="admin")
    router.message.filter(is_admin)
    router.message.register(cmd_user, Command("user"))
    router.message.register(cmd_grant, Command("grant"))
    router.message.register(cmd_debit, Command("debit"))
    router.message.register(cmd_audit, Command("audit"))
    router.message.register(cmd_stats, Command("stats"))
    router.message.register(cmd_plans_admin, Command("plans_admin"))
    router.message.register(cmd_plan_edit, Command("plan_edit", "plan_add"))
    router.message.register(cmd_plan_archive, Command("plan_archive"))
    router.message.register(cmd_refund, Command("refund"))
    return router
