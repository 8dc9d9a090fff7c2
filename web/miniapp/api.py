"""The Mini App's JSON endpoints (``/app/api/…``): the caller's own account, read and bought
through ``billing/`` only (the wallet, the catalogue, the ledger, the operations; a plan from
the balance by ``billing.plans.buy_plan_from_balance``; a Stars invoice by
``billing.stars`` and ``tg.invoices``), words from ``texts``.

Every handler first authenticates the init data (``web.miniapp.auth``): the account is the
signed user's, and no parameter names another. Bad input is a 400 with a reason and changes
nothing.
"""

from __future__ import annotations

import html
import json
import logging
import re
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from billing import accounts, payments, plans, stars, wallet
from billing.errors import BillingError, DuplicateRequest, InsufficientFunds, InvalidAmount
from billing.models import LedgerKind
from billing.prices import format_rub
from billing.settings import Settings
from billing.yookassa import GatewayError, GatewayUnavailable
from texts import wallet_texts
from texts.i18n import keys, pick_language, t
from texts.money_texts import pack_invoice_text, plan_invoice_text
from tg import invoices
from tg.factory import bot_token
from web.keys import BOT, GATEWAY, NOTIFIER, REDIS, SESSIONMAKER, SETTINGS
from web.miniapp.auth import Caller, caller_of
from web.notify import tell_canceled, tell_credited
from web.rollover import roll_over_due

log = logging.getLogger(__name__)

PAGE_DEFAULT = 20
PAGE_MAX = 50
CLICK_TTL_SECONDS = 24 * 3600  # a card payment's click is remembered this long
PUBLIC_API = Settings.model_fields["TELEGRAM_API_URL"].default
KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,64}")  # a click's idempotency key
TEXT_PREFIX = "app-"
TAG = re.compile(r"<[^>]*>")
LEDGER_KINDS = frozenset(k.value for k in LedgerKind)


def _bad(reason: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(
        text=json.dumps({"error": "bad_request", "reason": reason}),
        content_type="application/json",
    )


async def _body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, or a 400 that says what is wrong with it."""
    try:
        body = await request.json()
    except ValueError:
        raise _bad("the body must be JSON") from None
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object")
    return body


def _settings(request: web.Request) -> Settings:
    return request.app[SETTINGS]


def _caller(request: web.Request) -> Caller:
    settings = _settings(request)
    if settings.BOT_TOKEN is None and settings.TELEGRAM_API_URL == PUBLIC_API:
        # No token for the real Telegram: nothing to check against, nobody gets in (the
        # sandbox's public stand-in token is for a local emulator only).
        raise web.HTTPServiceUnavailable(
            text='{"error": "no bot token"}', content_type="application/json"
        )
    # The token the bot runs with: BOT_TOKEN, or the emulator's stand-in in the sandbox.
    return caller_of(request, bot_token(settings), settings.WEBAPP_INIT_MAX_AGE_SECONDS)


def _lang(caller: Caller) -> str:
    return pick_language(caller.language_code)


async def _account(request: web.Request, session: AsyncSession, caller: Caller) -> int:
    """The caller's user id: found, or created as the bot creates a newcomer (with the free
    operations), then what is due rolled over (``web.rollover``: a period that ended shows
    as renewed or ended, and the user is told in the chat at once, as the bot does)."""
    settings = _settings(request)
    found = await accounts.find_user_by_telegram_id(session, caller.telegram_id)
    if found is None:
        found, _ = await accounts.get_or_create_user(
            session,
            telegram_id=caller.telegram_id,
            free_operations=settings.FREE_OPERATIONS_COUNT,
            username=caller.username,
            language=_lang(caller),
        )
        await session.commit()
    await roll_over_due(request.app, session, found.id)
    return found.id


def _int_param(request: web.Request, name: str, *, low: int, high: int) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise _bad(f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def _plain(text: str) -> str:
    """A text of the chat (Telegram's HTML: <b>, <i>, entities) as plain text for the page,
    which shows every text as text, never as markup."""
    return html.unescape(TAG.sub("", text))


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None


# -- the page's words and settings --------------------------------------------------------


async def me(request: web.Request) -> web.Response:
    """The caller's language, the page's words in it, and the ways to pay offered."""
    caller = _caller(request)
    settings = _settings(request)
    lang = _lang(caller)
    async with request.app[SESSIONMAKER]() as session:
        await _account(request, session, caller)
    words = {k: t(k, lang) for k in sorted(keys(lang)) if k.startswith(TEXT_PREFIX)}
    return web.json_response(
        {
            "lang": lang,
            "texts": words,
            "stars": settings.stars_enabled,
            "card": settings.yookassa_enabled,
            "topup_presets": list(settings.TOPUP_PRESETS_RUB) if settings.yookassa_enabled else [],
            "stars_packs": [
                {"stars": n, "amount_text": format_rub(settings.stars_kopecks(n))}
                for n in (settings.STARS_PACKS if settings.stars_enabled else [])
            ],
            "kinds": sorted(LEDGER_KINDS),
        }
    )


# -- the balance ----------------------------------------------------------------------------


async def balance(request: web.Request) -> web.Response:
    """Rubles, free operations, the subscription's quota and its reset date, the packages."""
    caller = _caller(request)
    settings = _settings(request)
    lang = _lang(caller)
    async with request.app[SESSIONMAKER]() as session:
        user_id = await _account(request, session, caller)
        held = await wallet.wallet(session, settings, user_id=user_id)
    sub = held.subscription
    return web.json_response(
        {
            "balance": held.balance,
            "balance_text": format_rub(held.balance),
            "free_left": held.free_left,
            "free_granted": held.free_granted,
            "discount_percent": held.discount_percent,
            "plan": (sub.plan if sub else held.default_plan).name(lang)
            if (sub or held.default_plan)
            else None,
            "subscription": None
            if sub is None
            else {
                "plan": sub.plan.code,
                "name": sub.plan.name(lang),
                "units_left": sub.units_left,
                "units_per_period": sub.units_per_period,
                "resets_at": _iso(sub.ends_at),
                "renews": wallet_texts.renews(sub),
                "trial": sub.trial,
            },
            "packages": [
                {
                    "plan": p.plan.code,
                    "name": p.plan.name(lang),
                    "units_left": p.units_left,
                    "ends_at": _iso(p.ends_at),
                }
                for p in held.packages
            ],
            "package_units": held.package_units,
            # The same lines as /balance and /plans in the chat.
            "lines": [_plain(x) for x in wallet_texts.wallet_lines(held, settings, lang)],
        }
    )


# -- the plans ------------------------------------------------------------------------------


async def plans_list(request: web.Request) -> web.Response:
    """The plans on sale (not the default one), what each gives, its price in ⭐."""
    caller = _caller(request)
    settings = _settings(request)
    lang = _lang(caller)
    async with request.app[SESSIONMAKER]() as session:
        user_id = await _account(request, session, caller)
        held = await wallet.wallet(session, settings, user_id=user_id)
        catalogue = await wallet.catalogue(session)
    current = held.subscription.plan.code if held.subscription else None
    return web.json_response(
        {
            "plans": [
                {
                    "code": p.code,
                    "kind": p.kind,
                    "name": p.name(lang),
                    "price": p.price,
                    "price_text": format_rub(p.price),
                    "units": p.units,
                    "period": p.period,
                    "expires_days": p.expires_days,
                    "discount_percent": p.discount_percent,
                    "free_operations": p.free_operations,
                    "trial_days": p.trial_days,
                    "text": _plain(wallet_texts.plan_card(p, lang)),
                    "stars": stars.plan_stars(settings, p.price)
                    if settings.stars_enabled
                    else None,
                    "card": settings.yookassa_enabled and p.price > 0,
                    "current": p.code == current,
                }
                for p in catalogue
                if not p.is_default
            ],
            "balance": held.balance,
        }
    )


async def buy_plan(request: web.Request) -> web.Response:
    """💰 from the balance: once per click (the page's key), in one transaction."""
    caller = _caller(request)
    settings = _settings(request)
    lang = _lang(caller)
    code = request.match_info["code"]
    key = (await _body(request)).get("key")
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise _bad("key: 8 to 64 letters, digits, _ or -")
    async with request.app[SESSIONMAKER]() as session:
        user_id = await _account(request, session, caller)
        try:
            bought = await plans.buy_plan_from_balance(
                session,
                settings,
                user_id=user_id,
                plan_code=code,
                # The same space as the chat's keys ("tg:<telegram id>:<card key>"): a click
                # in the app and a tap in the chat are different requests, each once.
                request_key=f"app:{caller.telegram_id}:{key}",
            )
            held = await wallet.wallet(session, settings, user_id=user_id)
            await session.commit()
        except InsufficientFunds as exc:
            await session.rollback()
            return web.json_response(
                {
                    "status": "insufficient",
                    "balance": exc.balance,
                    "text": t("miniapp-buy-short", lang, balance=format_rub(exc.balance)),
                },
                status=409,
            )
        except DuplicateRequest:
            await session.rollback()
            return web.json_response(
                {"status": "duplicate", "text": t("plans-done-already", lang)}
            )
        except (plans.PlanNotFound, plans.PlanNotForSale):
            await session.rollback()
            return web.json_response(
                {"status": "not_for_sale", "text": t("plans-not-for-sale", lang)}, status=404
            )
    log.info("Mini App: user %s bought plan %s (%s)", user_id, code, bought.status)
    return web.json_response(
        {
            "status": bought.status.lower(),
            "plan": bought.plan_code,
            "price": bought.price,
            "balance": held.balance,
            "text": t(f"miniapp-bought-{bought.status.lower().replace('_', '-')}", lang),
        }
    )


async def stars_invoice(request: web.Request) -> web.Response:
    """A Stars invoice link for ``openInvoice``: a plan's price, or a pack of STARS_PACKS.
    Its pending row is committed before the link exists; paid, the bot credits it through
    the same once-only path as an invoice in the chat (billing.stars)."""
    caller = _caller(request)
    settings = _settings(request)
    lang = _lang(caller)
    if not settings.stars_enabled:
        raise _bad("Stars are not offered")
    body = await _body(request)
    plan_code, pack = body.get("plan"), body.get("pack")
    async with request.app[SESSIONMAKER]() as session:
        user_id = await _account(request, session, caller)
        try:
            if isinstance(plan_code, str) and pack is None:
                plan = await plans.get_plan(session, plan_code)
                info = wallet.plan_info(plan)
                count = stars.plan_stars(settings, plan.price) or 0
                words = plan_invoice_text(
                    settings, name=info.name(lang), price=plan.price, stars=count, language=lang
                )
                invoice = await stars.start_plan_purchase(
                    session,
                    settings,
                    user_id=user_id,
                    plan_code=plan_code,
                    description=words.description[:128],
                )
            elif isinstance(pack, int) and not isinstance(pack, bool) and plan_code is None:
                words = pack_invoice_text(settings, pack, lang)
                invoice = await stars.start_purchase(
                    session,
                    settings,
                    user_id=user_id,
                    stars=pack,
                    description=words.description[:128],
                )
            else:
                raise _bad("name a plan (its code) or a pack (⭐ of STARS_PACKS)")
            await session.commit()
        except (plans.PlanNotFound, plans.PlanNotForSale):
            await session.rollback()
            return web.json_response(
                {"status": "not_for_sale", "text": t("plans-not-for-sale", lang)}, status=404
            )
        except BillingError as exc:  # not a pack on sale, past one invoice's ⭐
            await session.rollback()
            raise _bad(str(exc)) from None
    link = await invoices.invoice_link(request.app[BOT], invoice, words)
    return web.json_response({"link": link, "stars": invoice.stars})


async def card_payment(request: web.Request) -> web.Response:
    """💳 A YooKassa payment: a plan's price (``{"plan": code}``) or a top-up
    (``{"amount_rub": n}``), with the click's ``key``. Created by the chat's own function
    (``billing.payments.start_yookassa_payment``); the page opens ``confirmation_url`` with
    ``openLink`` and then follows the payment (:func:`payment`). The same key again gives
    the same payment back, never a second one."""
    caller = _caller(request)
    settings = _settings(request)
    lang = _lang(caller)
    if not settings.yookassa_enabled:
        raise _bad("card payments are not offered")
    body = await _body(request)
    key, plan_code, amount = body.get("key"), body.get("plan"), body.get("amount_rub")
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise _bad("key: 8 to 64 letters, digits, _ or -")
    if isinstance(plan_code, str) and amount is None:
        amount = None
    elif isinstance(amount, int) and not isinstance(amount, bool) and plan_code is None:
        if not settings.TOPUP_MIN_RUB <= amount <= settings.TOPUP_MAX_RUB:
            raise _bad(f"amount_rub: from {settings.TOPUP_MIN_RUB} to {settings.TOPUP_MAX_RUB}")
    else:
        raise _bad("name a plan (its code) or an amount_rub")
    async with request.app[SESSIONMAKER]() as session:
        user_id = await _account(request, session, caller)
    click = f"once:app-pay:{caller.telegram_id}:{key}"
    redis = request.app[REDIS]
    try:
        first = bool(await redis.set(click, "", nx=True, ex=CLICK_TTL_SECONDS))
        earlier = None if first else await redis.get(click)
    except (RedisError, OSError) as exc:  # as the chat: a lost top-up is worse
        log.warning("Mini App: click check skipped, Redis error: %s", exc)
        first, earlier = True, None
    if not first:
        found = None
        if earlier:
            async with request.app[SESSIONMAKER]() as session:
                found = await payments.payment_state(
                    session, user_id=user_id, payment_id=int(earlier)
                )
        if found is None or not found.confirmation_url:
            return web.json_response(
                {"status": "duplicate", "text": t("plans-done-already", lang)}, status=409
            )
        return web.json_response(_payment_json(found, lang))
    description = (
        t("bot-topup-description", lang, amount=format_rub(amount * 100))
        if amount is not None
        else None
    )
    try:
        started = await payments.start_yookassa_payment(
            request.app[SESSIONMAKER],
            request.app[GATEWAY],
            settings,
            user_id=user_id,
            amount_rub=amount,
            plan_code=plan_code,
            description=description,
        )
    except (plans.PlanNotFound, plans.PlanNotForSale):
        return web.json_response(
            {"status": "not_for_sale", "text": t("plans-not-for-sale", lang)}, status=404
        )
    except payments.ReceiptEmailNeeded:
        return web.json_response(
            {"status": "email_needed", "text": t("miniapp-card-email", lang)}, status=409
        )
    except (InvalidAmount, payments.TopUpUnavailable, GatewayError) as exc:
        log.error("Mini App: card payment for user %s failed: %s", user_id, exc)
        return web.json_response(
            {"status": "unavailable", "text": t("bot-topup-unavailable", lang)}, status=503
        )
    try:
        await redis.set(click, str(started.payment_id), xx=True, ex=CLICK_TTL_SECONDS)
    except (RedisError, OSError) as exc:
        log.warning("Mini App: click %s not kept: %s", started.payment_id, exc)
    log.info("Mini App: user %s started card payment %s", user_id, started.payment_id)
    async with request.app[SESSIONMAKER]() as session:
        state = await payments.payment_state(
            session, user_id=user_id, payment_id=started.payment_id
        )
    assert state is not None
    return web.json_response(_payment_json(state, lang))


def _payment_json(state: payments.PaymentState, lang: str) -> dict[str, Any]:
    return {
        "status": "started",
        "payment": {
            "id": state.id,
            "amount": state.amount,
            "amount_text": format_rub(state.amount),
            "state": state.status,
            "state_text": t(f"miniapp-payment-{state.status.replace('_', '-')}", lang),
            "credited": state.credited,
            "confirmation_url": state.confirmation_url,
        },
    }


async def payment(request: web.Request) -> web.Response:
    """The caller's own card payment and its state: asked of YooKassa and credited through
    the one once-only path (``billing.payments.reconcile_payment``, as the webhook and the
    chat's "Проверить оплату"), so it is credited once wherever it is checked first."""
    caller = _caller(request)
    lang = _lang(caller)
    raw = request.match_info["id"]
    if not raw.isdigit() or not 1 <= int(raw) <= 2**63 - 1:
        raise _bad("the payment id must be a whole number")
    async with request.app[SESSIONMAKER]() as session:
        user_id = await _account(request, session, caller)
        state = await payments.payment_state(session, user_id=user_id, payment_id=int(raw))
    if state is None:
        raise web.HTTPNotFound(
            text='{"error": "no such payment"}', content_type="application/json"
        )
    if not state.credited and _settings(request).yookassa_enabled:
        try:
            result = await payments.reconcile_payment(
                request.app[SESSIONMAKER], request.app[GATEWAY], payment_id=state.id
            )
            # Credited or canceled by this check, before YooKassa's notification (which will
            # find it done already): the chat hears of it now, as from the notification.
            if result.telegram_id is not None:
                if result.outcome is payments.Outcome.CREDITED:
                    tell_credited(request.app[NOTIFIER], result)
                elif result.outcome is payments.Outcome.CANCELED:
                    if result.detail == "canceled now":
                        tell_canceled(request.app[NOTIFIER], result)
        except GatewayUnavailable as exc:  # the row's state as it is; the page asks again
            log.warning("Mini App: payment %s not checked now: %s", state.id, exc)
        except GatewayError as exc:
            log.error("Mini App: payment %s check failed: %s", state.id, exc)
        async with request.app[SESSIONMAKER]() as session:
            state = await payments.payment_state(session, user_id=user_id, payment_id=state.id)
        assert state is not None
    return web.json_response(_payment_json(state, lang))


# -- the history and the operations -------------------------------------------------------


async def history(request: web.Request) -> web.Response:
    """The ledger in plain words, newest first; ``kind`` (one or more, comma-separated)
    filters, ``before`` (the last id shown) turns the page: ``next`` is the next page's."""
    caller = _caller(request)
    lang = _lang(caller)
    limit = _int_param(request, "limit", low=1, high=PAGE_MAX) or PAGE_DEFAULT
    before = _int_param(request, "before", low=1, high=2**63 - 1)
    kinds: list[str] | None = None
    if request.query.get("kind"):
        kinds = [k for k in request.query["kind"].split(",") if k]
        unknown = [k for k in kinds if k not in LEDGER_KINDS]
        if unknown or not kinds:
            raise _bad(f"kind: one or more of {', '.join(sorted(LEDGER_KINDS))}")
    async with request.app[SESSIONMAKER]() as session:
        user_id = await _account(request, session, caller)
        items = await wallet.history(
            session, user_id=user_id, before_id=before, limit=limit, kinds=kinds
        )
        more = bool(items) and await wallet.has_history(
            session, user_id=user_id, before_id=items[-1].id, kinds=kinds
        )
    return web.json_response(
        {
            "items": [
                {
                    "id": i.id,
                    "at": _iso(i.created_at),
                    "when": wallet_texts.datetime_text(i.created_at, lang),
                    "kind": i.kind,
                    "amount": i.amount,
                    "free_delta": i.free_delta,
                    "units_delta": i.units_delta,
                    "balance_after": i.balance_after,
                    "text": _plain(wallet_texts.history_what(i, lang)),
                }
                for i in items
            ],
            "next": items[-1].id if more else None,
        }
    )


async def operations(request: web.Request) -> web.Response:
    """The operations, newest first: type, status, price, the source, why it was refunded."""
    caller = _caller(request)
    lang = _lang(caller)
    limit = _int_param(request, "limit", low=1, high=PAGE_MAX) or PAGE_DEFAULT
    before = _int_param(request, "before", low=1, high=2**63 - 1)
    username = await _bot_username(request)
    async with request.app[SESSIONMAKER]() as session:
        user_id = await _account(request, session, caller)
        items = await wallet.operations(session, user_id=user_id, before_id=before, limit=limit)
        more = len(items) == limit and bool(
            await wallet.operations(session, user_id=user_id, before_id=items[-1].id, limit=1)
        )
    return web.json_response(
        {
            "items": [
                {
                    "id": o.id,
                    "type": o.type,
                    "type_text": wallet_texts.mode_name(o.type, lang),
                    "status": o.status,
                    "status_text": t(f"app-op-status-{o.status}", lang),
                    "funding": o.funding,
                    "price": o.price,
                    "units": o.units,
                    "cost_text": wallet_texts.operation_cost_text(o, lang),
                    "at": _iso(o.created_at),
                    "when": wallet_texts.datetime_text(o.created_at, lang),
                    "refund_reason": wallet_texts.failure_text(o.error, lang)
                    if o.status in ("refunded", "failed")
                    else None,
                    # Back to the result in the chat: the bot replies to it (/start op_<id>).
                    "chat_link": f"https://t.me/{username}?start=op_{o.id}"
                    if username and o.result_message_id is not None
                    else None,
                }
                for o in items
            ],
            "next": items[-1].id if more else None,
        }
    )


async def _bot_username(request: web.Request) -> str | None:
    """The bot's username for t.me links: getMe once, then aiogram's cached answer. None
    when Telegram cannot be asked now (the page shows no link)."""
    try:
        me = await request.app[BOT].me()
    except Exception as exc:  # noqa: BLE001 - a link less, never a failed page
        log.warning("Mini App: getMe failed, no links to the chat: %r", exc)
        return None
    return me.username


def add_routes(app: web.Application) -> None:
    app.router.add_get("/app/api/me", me)
    app.router.add_get("/app/api/balance", balance)
    app.router.add_get("/app/api/plans", plans_list)
    app.router.add_post("/app/api/plans/{code}/buy", buy_plan)
    app.router.add_post("/app/api/stars/invoice", stars_invoice)
    app.router.add_post("/app/api/card/payment", card_payment)
    app.router.add_get("/app/api/card/payment/{id}", payment)
    app.router.add_get("/app/api/history", history)
    app.router.add_get("/app/api/operations", operations)
