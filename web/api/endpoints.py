"""The operator API's endpoints: one table (:data:`ENDPOINTS`) that both registers the routes
and makes the OpenAPI document, so the two cannot drift apart.

Each endpoint names its models (path, query, headers, body, response); :func:`serve` checks
the token and the rate, validates the request with those models (a refusal is a problem
document, nothing changed), calls the handler and serializes its answer with the response
model. Handlers read and write only through ``billing``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError, create_model
from sqlalchemy.exc import IntegrityError

from billing import accounts, reports, wallet
from billing.accounts import UserState
from billing.errors import InvalidAmount
from billing.models import LedgerKind
from billing.prices import discounted, operation_types, price_for, units_of
from billing.settings import ApiToken, Settings
from web.api import models as m
from web.api.auth import authenticate, check_rate
from web.api.problems import ApiProblem
from web.keys import SESSIONMAKER, SETTINGS
from web.rollover import roll_over_due

log = logging.getLogger(__name__)

USAGE_DEFAULT_DAYS = 30
PHRASES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
}


@dataclass(frozen=True)
class Call:
    """A request that passed its checks: the token and the validated parts."""

    request: web.Request
    settings: Settings
    token: ApiToken | None
    path: Any = None
    query: Any = None
    headers: Any = None
    body: Any = None


Handler = Callable[[Call], Awaitable[BaseModel | tuple[BaseModel, dict[str, str]]]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # below /api/v1, in aiohttp's and OpenAPI's {name} form
    operation_id: str
    summary: str
    handler: Handler
    response: type[BaseModel]
    scope: str | None = "read"  # None: no token needed
    path_model: type[BaseModel] | None = None
    query_model: type[BaseModel] | None = None
    header_model: type[BaseModel] | None = None
    body_model: type[BaseModel] | None = None
    errors: tuple[int, ...] = field(default=())

    @property
    def statuses(self) -> tuple[int, ...]:
        """The error statuses it may answer (for the document)."""
        found = set(self.errors)
        if self.scope is not None:
            found |= {401, 429}
        if self.scope == "write":
            found.add(403)
        if self.path_model or self.query_model or self.header_model or self.body_model:
            found.add(422)
        if self.body_model is not None:
            found |= {400, 413, 415}
        if self.header_model is not None:
            found.add(400)
        return tuple(sorted(found))


# -- parsing --------------------------------------------------------------------------------


def _errors(part: str, exc: ValidationError) -> list[dict[str, Any]]:
    # Where and why, never the input itself (it may be anything, of any size).
    return [
        {
            "location": ".".join([part, *(str(x) for x in error["loc"])]),
            "message": error["msg"],
        }
        for error in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def _invalid(errors: list[dict[str, Any]]) -> ApiProblem:
    return ApiProblem(
        422,
        "invalid-request",
        "Invalid request",
        "; ".join(f"{e['location']}: {e['message']}" for e in errors)[:1000],
        errors=errors,
    )


def _validate(part: str, model: type[BaseModel], data: Any) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(_errors(part, exc)) from None


def _query(request: web.Request) -> dict[str, str]:
    data: dict[str, str] = {}
    for name in request.query:
        values = request.query.getall(name)
        if len(values) > 1:
            raise _invalid([{"location": f"query.{name}", "message": "given more than once"}])
        data[name] = values[0]
    return data


async def _body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    if request.content_type != "application/json":
        raise ApiProblem(
            415,
            "unsupported-media-type",
            "Unsupported Media Type",
            "send the body as application/json",
        )
    raw = await request.read()  # past the server's client_max_size: 413
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = _errors("body", exc)
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise ApiProblem(
                400, "malformed-json", "Malformed JSON", "the body is not a JSON document"
            ) from None
        raise _invalid(errors) from None


def serve(endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        settings = request.config_dict[SETTINGS]
        token = None
        if endpoint.scope is not None:
            token = authenticate(request, settings, endpoint.scope)
            await check_rate(request, settings, token)
        parts: dict[str, Any] = {}
        if endpoint.path_model is not None:
            parts["path"] = _validate("path", endpoint.path_model, dict(request.match_info))
        if endpoint.query_model is not None:
            parts["query"] = _validate("query", endpoint.query_model, _query(request))
        elif request.query:
            raise _invalid([{"location": "query", "message": "takes no query parameters"}])
        if endpoint.header_model is not None:
            parts["headers"] = _headers(request, endpoint.header_model)
        if endpoint.body_model is not None:
            parts["body"] = await _body(request, endpoint.body_model)
        answer = await endpoint.handler(Call(request, settings, token, **parts))
        model, headers = answer if isinstance(answer, tuple) else (answer, {})
        assert isinstance(model, endpoint.response)
        return web.Response(
            text=model.model_dump_json(),
            content_type="application/json",
            headers=headers,
        )

    handle.__name__ = endpoint.operation_id
    return handle


def _headers(request: web.Request, model: type[BaseModel]) -> BaseModel:
    data: dict[str, str] = {}
    for name, info in model.model_fields.items():
        header = info.alias or name
        value = request.headers.get(header)
        if value is None and info.is_required():
            raise ApiProblem(
                400,
                f"{header.lower()}-missing",
                f"{header} missing",
                f"this request needs the {header} header",
            )
        if value is not None:
            data[header] = value
    return _validate("header", model, data)


# -- the handlers ---------------------------------------------------------------------------


def _not_found(telegram_id: int) -> ApiProblem:
    return ApiProblem(
        404, "user-not-found", "User not found", f"no user with Telegram id {telegram_id}"
    )


async def _user(session: Any, telegram_id: int) -> UserState:
    user = await accounts.find_user_by_telegram_id(session, telegram_id)
    if user is None:
        raise _not_found(telegram_id)
    return user


async def _rolled_user(call: Call, session: Any, telegram_id: int) -> UserState:
    """The user, as of now: what is due (a period over, a package expired, free operations
    due) rolled over first, as the bot and the Mini App read it (``web.rollover``: nothing
    due, nothing written)."""
    user = await _user(session, telegram_id)
    if await roll_over_due(call.request.config_dict, session, user.id):
        user = await _user(session, telegram_id)
    return user


def _utc(moment: datetime, name: str) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise _invalid([{"location": f"query.{name}", "message": "out of range"}]) from None


async def balance(call: Call) -> m.Balance:
    async with call.request.config_dict[SESSIONMAKER]() as session:
        user = await _rolled_user(call, session, call.path.telegram_id)
    return m.Balance(
        telegram_id=user.telegram_id,
        balance_kopecks=user.balance,
        currency=call.settings.YOOKASSA_CURRENCY,
        free_operations_left=user.free_left,
        free_operations_granted=user.free_granted,
    )


def _local_midnight(day: date, settings: Settings) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=settings.zone).astimezone(UTC)


def _usage_period(query: m.UsageQuery, settings: Settings) -> tuple[datetime, datetime]:
    """[since, until): the instants, the days ``from``..``to`` of BOT_TIMEZONE, or (both
    given) the period both bound."""
    untils = []
    if query.until is not None:
        untils.append(_utc(query.until, "until"))
    if query.to is not None:
        try:
            untils.append(_local_midnight(query.to + timedelta(days=1), settings))
        except OverflowError:
            untils.append(datetime.max.replace(tzinfo=UTC))
    until = min(untils) if untils else datetime.now(UTC)
    sinces = []
    if query.since is not None:
        sinces.append(_utc(query.since, "since"))
    if query.from_ is not None:
        try:
            sinces.append(_local_midnight(query.from_, settings))
        except OverflowError:  # the first day of year 1, east of UTC
            sinces.append(datetime.min.replace(tzinfo=UTC))
    if sinces:
        return max(sinces), until
    try:
        return until - timedelta(days=USAGE_DEFAULT_DAYS), until
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC), until


async def usage(call: Call) -> m.Usage:
    query: m.UsageQuery = call.query
    since, until = _usage_period(query, call.settings)
    async with call.request.config_dict[SESSIONMAKER]() as session:
        user = await _user(session, call.path.telegram_id)
        # A period that ends before it starts holds no operation (an answer, not an error:
        # each bound alone is valid, and the document cannot say "since before until").
        rows = (
            await reports.usage(
                session,
                user_id=user.id,
                since=since,
                until=until,
                group=query.group.value if query.group else None,
                tz=call.settings.zone,
            )
            if since < until
            else []
        )
    return m.Usage(
        telegram_id=user.telegram_id,
        since=since,
        until=until,
        group=query.group,
        timezone=call.settings.BOT_TIMEZONE,
        items=[
            m.UsageItem(
                type=r.op_type,
                source=r.funding,
                operations=r.operations,
                succeeded=r.succeeded,
                refunded=r.refunded,
                failed=r.failed,
                in_progress=r.in_progress,
                units=r.units,
                charged_kopecks=r.kopecks,
                price_kopecks=_price(r.op_type, call.settings),
                period=r.period,
            )
            for r in rows
        ],
    )


def _price(op_type: str, settings: Settings) -> int | None:
    try:
        return price_for(op_type, settings)
    except (ValueError, LookupError):  # a type the catalogue no longer has
        return None


def _holding(h: wallet.Holding, now: datetime) -> m.HoldingLimits:
    return m.HoldingLimits(
        plan=h.plan.code,
        units_left=h.units_left,
        units_per_period=h.units_per_period,
        ends_at=h.ends_at,
        auto_renew=h.auto_renew,
        due=not h.usable(now),
    )


async def limits(call: Call) -> m.Limits:
    async with call.request.config_dict[SESSIONMAKER]() as session:
        user = await _rolled_user(call, session, call.path.telegram_id)
        held = await wallet.wallet(session, call.settings, user_id=user.id)
        renews = await reports.free_renews_at(
            session, call.settings, user_id=user.id, now=held.now
        )
    return m.Limits(
        telegram_id=user.telegram_id,
        free_operations=m.FreeOperations(
            left=held.free_left, granted=held.free_granted, renews_at=renews
        ),
        subscription=_holding(held.subscription, held.now) if held.subscription else None,
        packages=[_holding(p, held.now) for p in held.packages],
        package_units_left=held.package_units,
        discount_percent=held.discount_percent,
    )


async def features(call: Call) -> m.Features:
    async with call.request.config_dict[SESSIONMAKER]() as session:
        user = await _rolled_user(call, session, call.path.telegram_id)
        held = await wallet.wallet(session, call.settings, user_id=user.id)
    return m.Features(
        telegram_id=user.telegram_id,
        operations=[
            m.Feature(
                type=str(kind),
                unlocked=held.allows(kind),
                units=units_of(kind, call.settings),
                price_kopecks=discounted(price_for(kind, call.settings), held.discount_percent),
            )
            for kind in operation_types()
        ],
    )


async def topup(call: Call) -> tuple[m.TopUpResult, dict[str, str]]:
    """An operator's credit, once per Idempotency-Key: the ledger's unique key is the
    guard (``billing.accounts.adjust``), so a repeat, even a concurrent one, writes nothing
    and is answered from the entry the first one wrote."""
    assert call.token is not None
    body: m.TopUpRequest = call.body
    name = call.token.name
    key = f"api:{name}:{call.headers.idempotency_key}"
    reason = f"api:{name}: {body.reason}".strip()  # as accounts.adjust keeps it
    replayed = False
    async with call.request.config_dict[SESSIONMAKER]() as session:
        user = await _user(session, call.path.telegram_id)
        try:
            await accounts.adjust(
                session,
                user_id=user.id,
                amount=body.amount_kopecks,
                reason=reason,
                key=key,
                max_amount=call.settings.admin_adjust_max_kopecks,
            )
            await session.commit()
        except IntegrityError:
            await session.rollback()
            replayed = True
        except InvalidAmount as exc:  # past ADMIN_ADJUST_MAX_RUB, or the balance's range
            await session.rollback()
            raise _invalid([{"location": "body.amount_kopecks", "message": str(exc)}]) from None
        entry = await reports.entry_by_key(session, key)
    if entry is None:
        raise RuntimeError("an adjustment's key conflicted, but no entry has it")
    if (
        entry.user_id != user.id
        or entry.kind != LedgerKind.ADJUSTMENT
        or entry.amount != body.amount_kopecks
        or entry.free_delta != 0
        or entry.reason != reason
    ):
        log.warning("operator API refused (409): token %r reused an Idempotency-Key", name)
        raise ApiProblem(
            409,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            "this Idempotency-Key was used for a different request; nothing was credited",
        )
    if not replayed:
        log.info(
            "operator API: token %r credited %d kopecks to user %d (entry %d)",
            name,
            entry.amount,
            user.id,
            entry.id,
        )
    result = m.TopUpResult(
        telegram_id=user.telegram_id,
        entry_id=entry.id,
        amount_kopecks=entry.amount,
        balance_kopecks=entry.balance_after,
        reason=entry.reason or "",
        created_at=entry.created_at,
    )
    return result, {"Idempotent-Replayed": "true" if replayed else "false"}


async def plans(call: Call) -> m.Plans:
    async with call.request.config_dict[SESSIONMAKER]() as session:
        catalogue = await wallet.catalogue(session)
    return m.Plans(
        items=[
            m.PlanOut(
                code=p.code,
                kind=p.kind,
                name_ru=p.name_ru,
                name_en=p.name_en,
                price_kopecks=p.price,
                period=p.period,
                units=p.units,
                expires_days=p.expires_days,
                discount_percent=p.discount_percent,
                unlocks=list(p.unlocks) if p.unlocks is not None else None,
                free_operations=p.free_operations,
                trial_days=p.trial_days,
                is_default=p.is_default,
            )
            for p in catalogue
        ]
    )


async def payments(call: Call) -> m.PaymentPage:
    query: m.PaymentsQuery = call.query
    async with call.request.config_dict[SESSIONMAKER]() as session:
        rows = await reports.payments_page(
            session,
            status=query.status.value if query.status else None,
            before_id=query.before,
            limit=query.limit + 1,  # one more: is there a next page
        )
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return m.PaymentPage(
        items=[
            m.PaymentOut(
                id=r.id,
                telegram_id=r.telegram_id,
                provider=r.provider,
                status=r.status,
                amount_kopecks=r.amount,
                currency=r.currency,
                stars=r.stars,
                refunded_kopecks=r.refunded_amount,
                provider_payment_id=r.provider_payment_id,
                plan=r.plan_code,
                created_at=r.created_at,
                credited_at=r.credited_at,
            )
            for r in rows
        ],
        next_before=rows[-1].id if more and rows else None,
    )


def topup_request(settings: Settings) -> type[m.TopUpRequest]:
    """The top-up's body, bounded by this server's ADMIN_ADJUST_MAX_RUB: the document then
    states the limit the server applies."""
    return _topup_request(settings.admin_adjust_max_kopecks)


@functools.lru_cache(maxsize=8)
def _topup_request(max_kopecks: int) -> type[m.TopUpRequest]:
    # One class per limit: the same limit, the same model, so the document built from the
    # endpoint table is found again (openapi.document_text).
    return create_model(
        "TopUpRequest",
        __base__=m.TopUpRequest,
        amount_kopecks=(
            Annotated[int, m.JsonInteger],
            Field(
                ge=1,
                le=max_kopecks,
                description="What to credit, in kopecks (at most ADMIN_ADJUST_MAX_RUB)",
            ),
        ),
    )


USER = "/users/{telegram_id}"


def endpoints(settings: Settings) -> tuple[Endpoint, ...]:
    """The API's endpoints on a server with these settings."""
    return (
        Endpoint(
            "GET",
            USER + "/balance",
            "getBalance",
            "A user's balance and free operations",
            balance,
            m.Balance,
            path_model=m.UserPath,
            errors=(404,),
        ),
        Endpoint(
            "GET",
            USER + "/usage",
            "getUsage",
            "A user's operations in a period, by type and source, with prices",
            usage,
            m.Usage,
            path_model=m.UserPath,
            query_model=m.UsageQuery,
            errors=(404,),
        ),
        Endpoint(
            "GET",
            USER + "/limits",
            "getLimits",
            "What a user has left: free operations, the subscription's quota, packages, resets",
            limits,
            m.Limits,
            path_model=m.UserPath,
            errors=(404,),
        ),
        Endpoint(
            "GET",
            USER + "/features",
            "getFeatures",
            "The operation types a user's plans unlock, and their prices for the user",
            features,
            m.Features,
            path_model=m.UserPath,
            errors=(404,),
        ),
        Endpoint(
            "POST",
            USER + "/topup",
            "topUp",
            "Credit a user's balance (an operator's credit, once per Idempotency-Key)",
            topup,
            m.TopUpResult,
            scope="write",
            path_model=m.UserPath,
            header_model=m.TopUpHeaders,
            body_model=topup_request(settings),
            errors=(404, 409),
        ),
        Endpoint("GET", "/plans", "listPlans", "The plans on sale", plans, m.Plans),
        Endpoint(
            "GET",
            "/payments",
            "listPayments",
            "Payments, newest first, a page at a time, by status",
            payments,
            m.PaymentPage,
            query_model=m.PaymentsQuery,
        ),
    )
