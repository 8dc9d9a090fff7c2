"""Plans: the catalogue, buying a plan, and the life of a holding (renewal, end, expiry).

The words (PLANS_SPEC.md): a **plan** is a row of the catalogue (a subscription: units per
period, renewed from the balance; or a package: units once, with an optional expiry); a
**holding** is a plan a user holds (``user_plans``). A user with no active subscription
holding is on the **default plan** (no row for it).

Every function takes a session and never commits: the caller owns the transaction. Every
counter moves only with its ledger entry, in the same transaction, by a conditional
``UPDATE``; once-only by unique keys:

- a purchase: ``plan_purchase:<request key>`` (a YooKassa payment's: ``payment:<id>``);
- a renewal: ``renewal:<holding>:<period_no>`` — plus the conditional
  ``UPDATE user_plans ... WHERE id = :id AND period_no = :n AND status = 'active' AND
  ends_at <= now``: a period rolls over once, however many passes and readers try at once;
- an end or expiry: ``plan_end:<holding>``;
- a free-operations renewal (FREE_OPERATIONS_RENEW_DAYS): ``free_renewal:<user>:<n>``, the
  n-th period since signup, with ``users.free_renewed_at`` moved by a conditional update.

Lock order, the charge's own (billing.operations): the user's row first, then the holding.
A roll-over that finds nothing due takes no lock at all (one read).

Money never disappears: a purchase that cannot happen raises before it writes; a plan paid
through YooKassa is bought from the balance right after the credit, in the credit's
transaction, and when it cannot be bought (archived meanwhile, the price went up) the money
stays on the balance and the user's message says so (:func:`buy_after_payment`).
"""

from __future__ import annotations

import calendar
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, insert, literal, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing import ledger, notices
from billing.bounds import INT32_MAX, MAX_FREE_ADJUST, MAX_SETTING_RUB, BadNumber, parse_kopecks
from billing.errors import BillingError, DuplicateRequest, InsufficientFunds, UserNotFound
from billing.models import (
    EndReason,
    HoldingStatus,
    LedgerEntry,
    LedgerKind,
    NoticeKind,
    Period,
    Plan,
    PlanKind,
    User,
    UserPlan,
    utcnow,
)
from billing.prices import PRICES, format_rub
from billing.settings import Settings

_plans = Plan.__table__
_holdings = UserPlan.__table__
_users = User.__table__

# ---------------------------------------------------------------------------------------
# Errors


class PlanError(BillingError):
    """Base of the plan errors. After one, the caller rolls its transaction back."""


class PlanNotFound(PlanError):
    def __init__(self, code: object):
        super().__init__(f"no plan {str(code)[:40]!r}")
        self.code = code


class PlanNotForSale(PlanError):
    """The plan is archived, or is the default plan (everyone is on it without buying)."""

    def __init__(self, code: str, reason: str):
        super().__init__(f"plan {code!r} is not for sale: {reason}")
        self.code = code
        self.reason = reason  # "archived" | "default"


class NoActiveSubscription(PlanError):
    def __init__(self, user_id: int):
        super().__init__(f"user {user_id} holds no active subscription")
        self.user_id = user_id


class PlanInvalid(PlanError):
    """A value or a combination the catalogue refuses. ``code`` names the rule (the admin's
    texts are ``admin-plan-error-<code>``), ``params`` its details; ``str()`` is English."""

    MESSAGES = {
        "bad_pair": "{value!r} is not field=value",
        "unknown_field": "unknown field {field!r} (fields: {fields})",
        "not_editable": "{field} cannot be changed: archive the plan and add a new one",
        "missing": "{field} is required",
        "repeated": "{field} is given twice",
        "bad_code": "{value!r} is not a plan code: 1-32 of a-z, 0-9, _ and -, from a letter",
        "exists": "a plan with code {value!r} exists already",
        "bad_name": "{field} must be 1 to 64 characters",
        "bad_number": "{field}: {value!r} is not a whole number",
        "bad_price": "price: {value!r} is not an amount in rubles, e.g. 199 or 199.90",
        "out_of_range": "{field} must be from {low} to {high}, got {value}",
        "bad_choice": "{field} must be one of {choices}, got {value!r}",
        "bad_bool": "{field} must be yes or no, got {value!r}",
        "bad_unlocks": "unlocks: unknown operation type {value!r} (known: {choices}; or all)",
        "period_of_subscription": "a subscription needs a period, a package has none",
        "expiry_of_package": "expires_days is for packages only",
        "trial_of_subscription": "trial_days is for subscriptions only",
        "free_plan_for_sale": "a plan for sale costs more than 0 (only the default plan is free)",
        "default_free": "the default plan is a free subscription: price 0, no trial",
        "default_archived": "the default plan cannot be archived: make another plan the "
        "default first",
        "default_needed": "there is always one default plan: make another plan the default "
        "instead",
        "default_of_archived": "an archived plan cannot be the default",
    }

    def __init__(self, code: str, **params: object):
        text = self.MESSAGES.get(code, code).format(**{k: params.get(k) for k in _names(code)})
        super().__init__(text)
        self.code = code
        self.params = params


def _names(code: str) -> list[str]:
    return re.findall(r"{(\w+)", PlanInvalid.MESSAGES.get(code, ""))


# ---------------------------------------------------------------------------------------
# The catalogue

CODE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
NAME_CHARS = 64
MAX_PRICE = MAX_SETTING_RUB * 100  # kopecks
MAX_UNITS = 1_000_000
MAX_EXPIRES_DAYS = 3650
MAX_TRIAL_DAYS = 365
MAX_SORT = 1_000_000
KINDS = tuple(k.value for k in PlanKind)
PERIODS = tuple(p.value for p in Period)

# The fields an operator sets (``field=value``), with their aliases.
EDITABLE = (
    "name_ru",
    "name_en",
    "price",
    "period",
    "units",
    "expires_days",
    "discount_percent",
    "unlocks",
    "free_operations",
    "trial_days",
    "sort_order",
    "is_default",
)
ALIASES = {
    "discount": "discount_percent",
    "free": "free_operations",
    "trial": "trial_days",
    "sort": "sort_order",
    "default": "is_default",
    "expires": "expires_days",
}
NOT_EDITABLE = ("code", "kind")
_YES = {"yes", "true", "1", "on", "да"}
_NO = {"no", "false", "0", "off", "нет"}
_NEVER = {"none", "never", "null", "-", ""}


def parse_fields(tokens: str | Sequence[str], *, adding: bool = False) -> dict[str, Any]:
    """``field=value`` pairs (a string is split like a shell line, so ``name_ru="Про плюс"``
    works) into typed values for :func:`add_plan` / :func:`edit_plan`. ``price`` is in
    rubles (``199``, ``199.90``); ``expires_days=never``; ``unlocks=all`` or a list
    ``generate,edit``; ``default=yes``. ``kind`` only when ``adding``. Raises PlanInvalid."""
    if isinstance(tokens, str):
        try:
            tokens = shlex.split(tokens)
        except ValueError:
            raise PlanInvalid("bad_pair", value=tokens[:60]) from None
    fields: dict[str, Any] = {}
    allowed = (*EDITABLE, "kind") if adding else EDITABLE
    for token in tokens:
        name, sep, raw = token.partition("=")
        name = name.strip().lower()
        if not sep or not name:
            raise PlanInvalid("bad_pair", value=token[:60])
        name = ALIASES.get(name, name)
        if name in NOT_EDITABLE and not (adding and name == "kind"):
            raise PlanInvalid("not_editable", field=name)
        if name not in allowed:
            raise PlanInvalid("unknown_field", field=name[:40], fields=", ".join(allowed))
        if name in fields:
            raise PlanInvalid("repeated", field=name)
        fields[name] = _parse_value(name, raw.strip())
    return fields


def _parse_value(name: str, raw: str) -> Any:
    if name in ("name_ru", "name_en", "kind", "period"):
        return raw if name.startswith("name") else raw.lower()
    if name == "price":
        try:
            return parse_kopecks(raw, limit=MAX_PRICE)
        except BadNumber as exc:
            if exc.reason == "out_of_range":
                raise PlanInvalid(
                    "out_of_range", field="price", low=0, high=format_rub(MAX_PRICE), value=raw
                ) from None
            raise PlanInvalid("bad_price", value=raw[:40]) from None
    if name == "is_default":
        if raw.lower() in _YES:
            return True
        if raw.lower() in _NO:
            return False
        raise PlanInvalid("bad_bool", field="default", value=raw[:40])
    if name == "unlocks":
        if raw.lower() in ("all", "*"):
            return None
        if raw.lower() in ("none", "nothing", "-", ""):
            return []
        return [item.strip() for item in raw.split(",") if item.strip()]
    if name == "expires_days" and raw.lower() in _NEVER:
        return None
    pattern = r"-?[0-9]{1,9}" if name == "sort_order" else r"[0-9]{1,9}"
    if not re.fullmatch(pattern, raw):
        raise PlanInvalid("bad_number", field=name, value=raw[:40])
    return int(raw)


_RANGES = {
    "price": (0, MAX_PRICE),
    "units": (0, MAX_UNITS),
    "expires_days": (1, MAX_EXPIRES_DAYS),
    "discount_percent": (0, 100),
    "free_operations": (0, MAX_FREE_ADJUST),
    "trial_days": (0, MAX_TRIAL_DAYS),
    "sort_order": (-MAX_SORT, MAX_SORT),
}


def _check_value(name: str, value: Any) -> Any:
    """One field's value, whoever gives it (the CLI, the bot, a direct call)."""
    if name in ("name_ru", "name_en"):
        if not isinstance(value, str) or not value.strip() or len(value.strip()) > NAME_CHARS:
            raise PlanInvalid("bad_name", field=name)
        return value.strip()
    if name == "kind":
        if value not in KINDS:
            raise PlanInvalid("bad_choice", field=name, choices=", ".join(KINDS), value=value)
        return value
    if name == "period":
        if value is not None and value not in PERIODS:
            raise PlanInvalid("bad_choice", field=name, choices=", ".join(PERIODS), value=value)
        return value
    if name == "is_default":
        if not isinstance(value, bool):
            raise PlanInvalid("bad_bool", field="default", value=value)
        return value
    if name == "unlocks":
        if value is None:
            return None
        if isinstance(value, str) or not isinstance(value, Iterable):
            raise PlanInvalid("bad_unlocks", value=value, choices=", ".join(PRICES))
        items = list(dict.fromkeys(value))
        for item in items:
            if item not in PRICES:
                raise PlanInvalid("bad_unlocks", value=str(item)[:40], choices=", ".join(PRICES))
        return items
    if name == "expires_days" and value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise PlanInvalid("bad_number", field=name, value=value)
    low, high = _RANGES[name]
    if not low <= value <= high:
        raise PlanInvalid("out_of_range", field=name, low=low, high=high, value=value)
    return value


def _check_plan(values: Mapping[str, Any]) -> None:
    """The rules between fields, on the plan as it will be."""
    subscription = values["kind"] == PlanKind.SUBSCRIPTION
    if subscription != (values.get("period") is not None):
        raise PlanInvalid("period_of_subscription")
    if values.get("expires_days") is not None and subscription:
        raise PlanInvalid("expiry_of_package")
    if values.get("trial_days", 0) and not subscription:
        raise PlanInvalid("trial_of_subscription")
    if values.get("is_default"):
        if not subscription or values["price"] != 0 or values.get("trial_days", 0):
            raise PlanInvalid("default_free")
        if values.get("archived_at") is not None:
            raise PlanInvalid("default_of_archived")
    elif values["price"] <= 0:
        raise PlanInvalid("free_plan_for_sale")


async def list_plans(session: AsyncSession, *, include_archived: bool = False) -> list[Plan]:
    """The catalogue in its order (sort_order, then id); archived plans only when asked."""
    query = select(Plan).order_by(Plan.sort_order, Plan.id)
    if not include_archived:
        query = query.where(Plan.archived_at.is_(None))
    return list((await session.scalars(query)).all())


async def get_plan(session: AsyncSession, code: str) -> Plan:
    plan = await session.scalar(select(Plan).where(Plan.code == code))
    if plan is None:
        raise PlanNotFound(code)
    return plan


async def default_plan(session: AsyncSession) -> Plan:
    plan = await session.scalar(select(Plan).where(Plan.is_default.is_(True)))
    if plan is None:  # the migration seeds one and nothing here removes the last one
        raise PlanNotFound("(default)")
    return plan


async def _plan_by_id(session: AsyncSession, plan_id: int) -> Plan:
    plan = await session.get(Plan, plan_id)
    if plan is None:
        raise PlanNotFound(plan_id)
    return plan


async def add_plan(session: AsyncSession, **fields: Any) -> Plan:
    """A new plan: ``code``, ``kind``, ``name_ru``, ``name_en``, ``price`` (kopecks) and, as
    the kind needs, ``period``, ``units``, ``expires_days``, ``discount_percent``,
    ``unlocks``, ``free_operations``, ``trial_days``, ``sort_order``, ``is_default``."""
    code = fields.pop("code", None)
    if not isinstance(code, str) or not CODE.fullmatch(code):
        raise PlanInvalid("bad_code", value=str(code)[:40])
    for name in fields:
        if name not in (*EDITABLE, "kind"):
            raise PlanInvalid("unknown_field", field=name, fields=", ".join((*EDITABLE, "kind")))
    for name in ("kind", "name_ru", "name_en", "price"):
        if name not in fields:
            raise PlanInvalid("missing", field=name)
    values: dict[str, Any] = {
        "period": None,
        "units": 0,
        "expires_days": None,
        "discount_percent": 0,
        "unlocks": None,
        "free_operations": 0,
        "trial_days": 0,
        "is_default": False,
    }
    values.update({name: _check_value(name, value) for name, value in fields.items()})
    _check_plan(values)
    if await session.scalar(select(Plan.id).where(Plan.code == code)) is not None:
        raise PlanInvalid("exists", value=code)
    if values.get("sort_order") is None:
        last = await session.scalar(select(func.max(Plan.sort_order)))
        values["sort_order"] = min((last or 0) + 10, MAX_SORT)
    if values["is_default"]:
        await _drop_default(session)
    plan = Plan(code=code, **values)
    session.add(plan)
    await session.flush()
    return plan


async def _drop_default(session: AsyncSession) -> None:
    # One statement before the new default is written: the partial unique index allows one.
    await session.execute(
        update(Plan)
        .where(Plan.is_default.is_(True))
        .values(is_default=False)
        .execution_options(synchronize_session="fetch")
    )
    await session.flush()


async def edit_plan(session: AsyncSession, code: str, /, **fields: Any) -> Plan:
    """Change a plan. Holders keep what they bought until their next period (a holding
    copies the price, the period and the units at purchase and at each renewal)."""
    for name in fields:
        if name in NOT_EDITABLE:
            raise PlanInvalid("not_editable", field=name)
        if name not in EDITABLE:
            raise PlanInvalid("unknown_field", field=name, fields=", ".join(EDITABLE))
    plan = await session.scalar(select(Plan).where(Plan.code == code).with_for_update())
    if plan is None:
        raise PlanNotFound(code)
    checked = {name: _check_value(name, value) for name, value in fields.items()}
    if plan.is_default and checked.get("is_default") is False:
        raise PlanInvalid("default_needed")
    values = {
        name: getattr(plan, name)
        for name in (*EDITABLE, "kind", "archived_at")
        if name != "is_default"
    }
    values["is_default"] = plan.is_default
    values.update(checked)
    _check_plan(values)
    if checked.get("is_default") and not plan.is_default:
        await _drop_default(session)
    for name, value in checked.items():
        setattr(plan, name, value)
    plan.updated_at = utcnow()
    await session.flush()
    return plan


async def archive_plan(session: AsyncSession, code: str) -> Plan:
    """Take a plan off sale. Holders keep it until it ends; an archived subscription does not
    renew (it ends at its period's end, the user is told). The default plan is never
    archived. Archiving an archived plan changes nothing."""
    plan = await session.scalar(select(Plan).where(Plan.code == code).with_for_update())
    if plan is None:
        raise PlanNotFound(code)
    if plan.is_default:
        raise PlanInvalid("default_archived")
    if plan.archived_at is None:
        plan.archived_at = utcnow()
        plan.updated_at = plan.archived_at
        await session.flush()
    return plan


def plan_name(plan: Any, language: str | None) -> str:
    return plan.name_en if (language or "").startswith("en") else plan.name_ru


# ---------------------------------------------------------------------------------------
# Time


def aware(moment: datetime) -> datetime:
    """SQLite gives datetimes back without a zone: they are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def add_period(start: datetime, period: str, count: int = 1) -> datetime:
    """``start`` plus ``count`` periods; a month later than 31 January is 28/29 February."""
    if period == Period.DAY:
        return start + timedelta(days=count)
    if period == Period.WEEK:
        return start + timedelta(weeks=count)
    months = count * (12 if period == Period.YEAR else 1)
    if period not in (Period.MONTH, Period.YEAR):
        raise ValueError(f"unknown period {period!r}")
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


# ---------------------------------------------------------------------------------------
# Buying

BOUGHT = "bought"  # a new holding, paid (or a trial)
SCHEDULED = "scheduled"  # a subscription while another is active: it starts at the renewal
ALREADY_ACTIVE = "already_active"  # the active subscription itself: auto-renewal back on
PURCHASE_PREFIX = "plan_purchase:"
MAX_REQUEST_KEY = 128 - len(PURCHASE_PREFIX)


@dataclass(frozen=True)
class PurchaseResult:
    status: str  # BOUGHT | SCHEDULED | ALREADY_ACTIVE
    plan_id: int
    plan_code: str
    holding_id: int | None  # the new holding; for SCHEDULED the active one it follows
    price: int  # kopecks taken from the balance now (0 for a trial or a scheduled change)
    units: int  # the units the holding starts with (the plan's)
    free_operations: int  # free operations added now
    trial: bool
    ends_at: datetime | None  # the (first) period's end / the package's expiry
    balance_after: int
    free_after: int


_USER = (
    _users.c.id,
    _users.c.balance,
    _users.c.free_operations_left,
    _users.c.free_operations_granted,
    _users.c.created_at,
    _users.c.free_renewed_at,
)


async def _lock_user(session: AsyncSession, user_id: int) -> Any:
    """The user's row, locked (the charge's lock order: the user first, then a holding)."""
    row = (
        await session.execute(select(*_USER).where(_users.c.id == user_id).with_for_update())
    ).one_or_none()
    if row is None:
        raise UserNotFound(user_id)
    return row


async def _active_subscription(session: AsyncSession, user_id: int) -> Any:
    return (
        await session.execute(
            select(_holdings)
            .where(
                _holdings.c.user_id == user_id,
                _holdings.c.kind == PlanKind.SUBSCRIPTION.value,
                _holdings.c.status == HoldingStatus.ACTIVE.value,
            )
            .with_for_update()
        )
    ).one_or_none()


async def _trial_for(session: AsyncSession, user_id: int, plan: Plan) -> bool:
    """A trial: a subscription with trial_days, for a user who never held that plan."""
    if plan.kind != PlanKind.SUBSCRIPTION or not plan.trial_days:
        return False
    held = await session.scalar(
        select(_holdings.c.id)
        .where(_holdings.c.user_id == user_id, _holdings.c.plan_id == plan.id)
        .limit(1)
    )
    return held is None


def ensure_for_sale(plan: Plan) -> None:
    """Raise PlanNotForSale for the default plan or an archived one."""
    if plan.is_default:
        raise PlanNotForSale(plan.code, "default")
    if plan.archived_at is not None:
        raise PlanNotForSale(plan.code, "archived")


def _lit(value: Any, column: Any) -> Any:
    return literal(value, column.type) if value is not None else literal(None)


async def _create_holding(
    session: AsyncSession,
    *,
    user_id: int,
    plan: Plan,
    trial: bool,
    key: str,
    now: datetime,
    payment_id: int | None = None,
) -> tuple[Any, Any, datetime | None]:
    """Debit the price, add the plan's free operations, write the holding and its
    ``plan_purchase`` entry: one chain (one statement on PostgreSQL). Returns (holding row,
    the user's row after, ends_at); raises InsufficientFunds when the balance fell short."""
    subscription = plan.kind == PlanKind.SUBSCRIPTION
    price = 0 if trial else plan.price
    free_ops = plan.free_operations
    if subscription:
        ends_at: datetime | None = (
            now + timedelta(days=plan.trial_days) if trial else add_period(now, plan.period or "")
        )
    else:
        ends_at = now + timedelta(days=plan.expires_days) if plan.expires_days else None
    c = _holdings.c
    values = {
        "plan_id": _lit(plan.id, c.plan_id),
        "kind": _lit(plan.kind, c.kind),
        "status": _lit(HoldingStatus.ACTIVE.value, c.status),
        "units_left": _lit(plan.units, c.units_left),
        "units_per_period": _lit(plan.units, c.units_per_period),
        "price": _lit(price, c.price),
        "period": _lit(plan.period, c.period),
        "period_no": _lit(1, c.period_no),
        "period_start": _lit(now, c.period_start),
        "ends_at": _lit(ends_at, c.ends_at),
        "auto_renew": _lit(subscription, c.auto_renew),
        "trial": _lit(trial, c.trial),
        "payment_id": _lit(payment_id, c.payment_id),
        "created_at": _lit(now, c.created_at),
        "updated_at": _lit(now, c.updated_at),
    }

    def holding(p: Any) -> Any:
        source = select(p["moved"].id.label("user_id"), *(v.label(k) for k, v in values.items()))
        return (
            insert(_holdings)
            .from_select(["user_id", *values], source, include_defaults=False)
            .returning(c.id, c.user_id, c.units_left)
        )

    rows = await ledger.run(
        session,
        [
            ledger.Step(
                "moved",
                lambda _: ledger.balance_step(
                    user_id,
                    amount=-price,
                    free_delta=free_ops,
                    conditions=(
                        _users.c.balance >= price,
                        _users.c.free_operations_left <= INT32_MAX - free_ops,
                    ),
                ),
            ),
            ledger.Step("holding", holding),
            ledger.Step(
                "entry",
                lambda p: ledger.entry(
                    p["moved"],
                    kind=LedgerKind.PLAN_PURCHASE,
                    amount=-price,
                    free_delta=free_ops,
                    key=key,
                    payment_id=payment_id,
                    reason=f"{plan.code}{' trial' if trial else ''}",
                    units_delta=plan.units,
                    units_after=p["holding"].units_left,
                    holding_id=p["holding"].id,
                    plan_id=plan.id,
                    where=p["holding"].user_id == p["moved"].id,
                ),
            ),
        ],
    )
    if rows["moved"] is None:
        user = await _lock_user(session, user_id)
        raise InsufficientFunds(
            price=price,
            balance=user.balance,
            free_left=user.free_operations_left,
            free_granted=user.free_operations_granted,
        )
    if rows["entry"] is None:  # never with the user's row locked; undo the debit with it
        raise PlanError(f"user {user_id}: the purchase of {plan.code} did not complete")
    return rows["holding"], rows["moved"], ends_at


async def buy_plan_from_balance(
    session: AsyncSession,
    settings: Settings | None = None,
    *,
    user_id: int,
    plan_code: str,
    request_key: str,
    now: datetime | None = None,
    payment_id: int | None = None,
) -> PurchaseResult:
    """Buy a plan from the balance, in the caller's transaction (one chain: the conditional
    debit, the holding, the ``plan_purchase`` entry with the plan's units and free
    operations). Once per ``request_key`` (the Telegram update, or ``payment:<id>``).

    A package is bought whatever else the user holds (separate counters). A subscription
    while one is active is a change at the renewal (``next_plan_id``: no money now, status
    SCHEDULED; the same plan: auto-renewal back on, ALREADY_ACTIVE). A subscription with
    trial_days, for a user who never held it: the first period is free and lasts trial_days.

    Raises PlanNotFound, PlanNotForSale (archived, or the default plan), InsufficientFunds,
    DuplicateRequest (roll back), UserNotFound; nothing is written before any of them.
    """
    if not request_key or len(request_key) > MAX_REQUEST_KEY:
        raise PlanError(f"a request key of 1 to {MAX_REQUEST_KEY} characters")
    now = now or utcnow()
    plan = await get_plan(session, plan_code)
    ensure_for_sale(plan)
    user = await _lock_user(session, user_id)
    key = PURCHASE_PREFIX + request_key
    if await session.scalar(select(LedgerEntry.id).where(LedgerEntry.idempotency_key == key)):
        raise DuplicateRequest(request_key)
    if plan.kind == PlanKind.SUBSCRIPTION:
        current = await _active_subscription(session, user_id)
        if current is not None:
            return await _schedule(session, user, current, plan)
    trial = await _trial_for(session, user_id, plan)
    holding, moved, ends_at = await _create_holding(
        session, user_id=user_id, plan=plan, trial=trial, key=key, now=now, payment_id=payment_id
    )
    return PurchaseResult(
        status=BOUGHT,
        plan_id=plan.id,
        plan_code=plan.code,
        holding_id=holding.id,
        price=0 if trial else plan.price,
        units=plan.units,
        free_operations=plan.free_operations,
        trial=trial,
        ends_at=ends_at,
        balance_after=moved.balance,
        free_after=moved.free_operations_left,
    )


async def _schedule(session: AsyncSession, user: Any, current: Any, plan: Plan) -> PurchaseResult:
    same = current.plan_id == plan.id
    await session.execute(
        update(_holdings)
        .where(_holdings.c.id == current.id)
        .values(next_plan_id=None if same else plan.id, auto_renew=True, updated_at=utcnow())
    )
    return PurchaseResult(
        status=ALREADY_ACTIVE if same else SCHEDULED,
        plan_id=plan.id,
        plan_code=plan.code,
        holding_id=current.id,
        price=0,
        units=plan.units,
        free_operations=0,
        trial=False,
        ends_at=aware(current.ends_at) if current.ends_at else None,
        balance_after=user.balance,
        free_after=user.free_operations_left,
    )


async def choose_next_plan(
    session: AsyncSession, *, user_id: int, plan_code: str
) -> PurchaseResult:
    """The subscription to renew into at the end of the current period (a change takes effect
    at the renewal: no proration). The current plan's own code cancels a chosen change."""
    plan = await get_plan(session, plan_code)
    if plan.kind != PlanKind.SUBSCRIPTION:
        raise PlanNotForSale(plan.code, "package")
    user = await _lock_user(session, user_id)
    current = await _active_subscription(session, user_id)
    if current is None:
        raise NoActiveSubscription(user_id)
    if plan.id != current.plan_id:
        ensure_for_sale(plan)
    return await _schedule(session, user, current, plan)


async def set_auto_renew(session: AsyncSession, *, user_id: int, on: bool) -> int:
    """Turn the active subscription's renewal on or off; returns the holding's id. Off: it
    ends at its period's end (and a chosen change is dropped)."""
    values: dict[str, Any] = {"auto_renew": on, "updated_at": utcnow()}
    if not on:
        values["next_plan_id"] = None
    holding_id = await session.scalar(
        update(_holdings)
        .where(
            _holdings.c.user_id == user_id,
            _holdings.c.kind == PlanKind.SUBSCRIPTION.value,
            _holdings.c.status == HoldingStatus.ACTIVE.value,
        )
        .values(**values)
        .returning(_holdings.c.id)
    )
    if holding_id is None:
        raise NoActiveSubscription(user_id)
    return holding_id


@dataclass(frozen=True)
class PlanPaymentNote:
    """What became of the plan a YooKassa payment was for (its message's contents)."""

    kind: NoticeKind  # PLAN_BOUGHT | PLAN_SCHEDULED | PLAN_NOT_BOUGHT
    plan_id: int | None
    plan_code: str | None
    name_ru: str | None
    name_en: str | None
    plan_kind: str | None  # subscription | package
    holding_id: int | None
    units: int
    ends_at: datetime | None
    price: int  # taken from the balance for the plan
    balance_after: int
    reason: str | None  # "trial" | "scheduled" | "already_active" | "archived" | ...

    def name(self, language: str | None) -> str:
        return (self.name_en if (language or "").startswith("en") else self.name_ru) or "—"


async def buy_after_payment(
    session: AsyncSession,
    *,
    user_id: int,
    plan_id: int,
    payment_id: int,
    amount: int,
    now: datetime | None = None,
) -> PlanPaymentNote:
    """Right after a plan's payment was credited to the balance, in the credit's transaction:
    buy the plan from the balance (once: ``plan_purchase:payment:<id>``). If it cannot be
    bought (archived or gone meanwhile, the price went up past the balance) the money stays
    on the balance. Either way the user's message is recorded under the credit's own key
    (``credited:<payment id>``), so every sender of "credited" sends this one instead."""
    plan = await session.get(Plan, plan_id)
    result: PurchaseResult | None = None
    reason: str | None = None
    if plan is None:
        reason = "not_found"
    else:
        try:
            async with session.begin_nested():  # a refusal undoes the purchase only
                result = await buy_plan_from_balance(
                    session,
                    user_id=user_id,
                    plan_code=plan.code,
                    request_key=f"payment:{payment_id}",
                    now=now,
                    payment_id=payment_id,
                )
        except PlanNotForSale as exc:
            reason = exc.reason
        except InsufficientFunds:
            reason = "no_money"
    balance = await session.scalar(select(_users.c.balance).where(_users.c.id == user_id))
    if result is None:
        kind = NoticeKind.PLAN_NOT_BOUGHT
    elif result.status == BOUGHT:
        kind, reason = NoticeKind.PLAN_BOUGHT, "trial" if result.trial else None
    else:
        kind, reason = NoticeKind.PLAN_SCHEDULED, result.status
    note = PlanPaymentNote(
        kind=kind,
        plan_id=plan.id if plan else None,
        plan_code=plan.code if plan else None,
        name_ru=plan.name_ru if plan else None,
        name_en=plan.name_en if plan else None,
        plan_kind=plan.kind if plan else None,
        holding_id=result.holding_id if result else None,
        units=result.units if result else 0,
        ends_at=result.ends_at if result else None,
        price=result.price if result else 0,
        balance_after=balance or 0,
        reason=reason,
    )
    await notices.add(
        session,
        key=notices.credited_key(payment_id),
        kind=kind,
        payment_id=payment_id,
        user_id=user_id,
        amount=amount,
        balance_after=note.balance_after,
        reason=reason,
        plan_id=note.plan_id,
        holding_id=note.holding_id,
    )
    return note


# ---------------------------------------------------------------------------------------
# Renewal, end, expiry, free renewals

RENEWED = "renewed"  # a subscription's new period, paid from the balance
CHANGED = "changed"  # at the renewal, the subscription chosen mid-period began
ENDED = "ended"  # a subscription ended: reason canceled | no_money | archived
EXPIRED = "expired"  # a package past its expiry
FREE_RENEWED = "free_renewed"  # free operations topped up (FREE_OPERATIONS_RENEW_DAYS)


@dataclass(frozen=True)
class RollOverEvent:
    kind: str  # RENEWED | CHANGED | ENDED | EXPIRED | FREE_RENEWED
    user_id: int
    holding_id: int | None = None  # CHANGED: the new holding
    plan_code: str | None = None
    period_no: int | None = None
    price: int = 0  # taken from the balance (ENDED no_money: what the renewal would cost)
    units: int = 0  # the units the new period starts with / that were lost at the end
    ends_at: datetime | None = None
    reason: str | None = None  # ENDED / EXPIRED: an EndReason value
    free_delta: int = 0  # FREE_RENEWED
    balance_after: int | None = None
    notice_key: str | None = None  # the user's message (payment_notices), sent after commit


@dataclass(frozen=True)
class DueHolding:
    holding_id: int
    user_id: int
    kind: str
    ends_at: datetime


def _due_holding(now: datetime) -> Any:
    return and_(
        _holdings.c.status == HoldingStatus.ACTIVE.value,
        _holdings.c.ends_at.is_not(None),
        _holdings.c.ends_at <= now,
    )


async def due_holdings(session: AsyncSession, now: datetime, limit: int = 100) -> list[DueHolding]:
    """Active holdings whose period (subscription) or life (package) is over, oldest first."""
    rows = await session.execute(
        select(_holdings.c.id, _holdings.c.user_id, _holdings.c.kind, _holdings.c.ends_at)
        .where(_due_holding(now))
        .order_by(_holdings.c.ends_at, _holdings.c.id)
        .limit(limit)
    )
    return [DueHolding(r.id, r.user_id, r.kind, aware(r.ends_at)) for r in rows]


async def due_users(
    session: AsyncSession, settings: Settings, *, now: datetime, limit: int = 100
) -> list[int]:
    """The users the scheduled pass rolls over: a holding due, or (FREE_OPERATIONS_RENEW_DAYS)
    a free-operations period begun since their last top-up."""
    users = list(dict.fromkeys(h.user_id for h in await due_holdings(session, now, limit)))
    days = settings.FREE_OPERATIONS_RENEW_DAYS
    if days and len(users) < limit:
        cutoff = now - timedelta(days=days)
        rows = await session.scalars(
            select(_users.c.id)
            .where(
                or_(
                    and_(_users.c.free_renewed_at.is_(None), _users.c.created_at <= cutoff),
                    _users.c.free_renewed_at <= cutoff,
                ),
                _users.c.id.not_in(users) if users else true(),
            )
            .order_by(_users.c.id)
            .limit(limit - len(users))
        )
        users.extend(rows)
    return users


def _free_period(
    settings: Settings, created_at: datetime, renewed_at: datetime | None, now: datetime
) -> tuple[int, datetime] | None:
    """(n, start) of the free-operations period ``now`` is in — the n-th since signup — when
    its top-up has not happened yet; else None."""
    days = settings.FREE_OPERATIONS_RENEW_DAYS
    if not days:
        return None
    span = timedelta(days=days)
    created = aware(created_at)
    number = (now - created) // span
    if number < 1:
        return None
    start = created + number * span
    if renewed_at is not None and aware(renewed_at) >= start:
        return None
    return number, start


async def roll_over(
    session: AsyncSession, settings: Settings, *, user_id: int, now: datetime | None = None
) -> list[RollOverEvent]:
    """Everything due for this user, each exactly once: renew or end the subscription whose
    period is over, expire packages past their expiry, top up the free operations
    (FREE_OPERATIONS_RENEW_DAYS). Called by the scheduled pass and on read (before a
    charge, /plans, /balance); any number of them at once give one roll-over.

    Writes the user's messages (payment_notices) in the same transaction; the caller sends
    them after its commit (``event.notice_key``), or a worker's maintenance pass does.
    Nothing due: one read, no lock, no write.
    """
    now = now or utcnow()
    due = exists().where(_holdings.c.user_id == _users.c.id, _due_holding(now))
    probe = (
        await session.execute(
            select(_users.c.created_at, _users.c.free_renewed_at, due.label("due")).where(
                _users.c.id == user_id
            )
        )
    ).one_or_none()
    if probe is None:
        raise UserNotFound(user_id)
    if (
        not probe.due
        and _free_period(settings, probe.created_at, probe.free_renewed_at, now) is None
    ):
        return []
    await _lock_user(session, user_id)
    holdings = (
        await session.execute(
            select(_holdings)
            .where(_holdings.c.user_id == user_id, _due_holding(now))
            .order_by(_holdings.c.ends_at, _holdings.c.id)
            .with_for_update()
        )
    ).all()
    events: list[RollOverEvent] = []
    for holding in holdings:
        events.extend(await _roll_holding(session, holding, now))
    free = await _free_renewal(session, settings, user_id, now)
    if free is not None:
        events.append(free)
    return events


async def _balance(session: AsyncSession, user_id: int) -> int:
    return int(await session.scalar(select(_users.c.balance).where(_users.c.id == user_id)) or 0)


async def _roll_holding(session: AsyncSession, holding: Any, now: datetime) -> list[RollOverEvent]:
    if holding.kind == PlanKind.PACKAGE:
        return await _end(session, holding, EndReason.EXPIRED, now)
    if not holding.auto_renew:
        return await _end(session, holding, EndReason.CANCELED, now)
    target = await _plan_by_id(session, holding.next_plan_id or holding.plan_id)
    if target.archived_at is not None or target.is_default:
        return await _end(session, holding, EndReason.ARCHIVED, now)
    changing = target.id != holding.plan_id
    trial = changing and await _trial_for(session, holding.user_id, target)
    price = 0 if trial else target.price
    if await _balance(session, holding.user_id) < price:
        return await _end(session, holding, EndReason.NO_MONEY, now, price=price)
    if changing:
        await _end(session, holding, EndReason.REPLACED, now)
        new, moved, ends_at = await _create_holding(
            session,
            user_id=holding.user_id,
            plan=target,
            trial=trial,
            key=f"{PURCHASE_PREFIX}change:{holding.id}:{holding.period_no}",
            now=now,
        )
        key = f"{NoticeKind.PLAN_CHANGED.value}:{holding.id}"
        await notices.add(
            session,
            key=key,
            kind=NoticeKind.PLAN_CHANGED,
            user_id=holding.user_id,
            amount=price,
            balance_after=moved.balance,
            reason="trial" if trial else None,
            plan_id=target.id,
            holding_id=new.id,
        )
        return [
            RollOverEvent(
                CHANGED,
                holding.user_id,
                holding_id=new.id,
                plan_code=target.code,
                period_no=1,
                price=price,
                units=target.units,
                ends_at=ends_at,
                balance_after=moved.balance,
                notice_key=key,
            )
        ]
    return await _renew(session, holding, target, now)


async def _renew(
    session: AsyncSession, holding: Any, plan: Plan, now: datetime
) -> list[RollOverEvent]:
    """The next period of the same plan at its current price and units: the conditional
    update on (id, period_no, due), the debit, the ``renewal:<holding>:<n+1>`` entry."""
    number = holding.period_no + 1
    start = aware(holding.ends_at)
    if add_period(start, plan.period or "") <= now:
        start = now  # long overdue (the pass did not run): one period from now, not back-paid
    ends_at = add_period(start, plan.period or "")
    price = plan.price
    c = _holdings.c
    key = f"renewal:{holding.id}:{number}"
    rows = await ledger.run(
        session,
        [
            ledger.Step(
                "holding",
                lambda _: update(_holdings)
                .where(
                    c.id == holding.id,
                    c.period_no == holding.period_no,
                    _due_holding(now),
                )
                .values(
                    period_no=number,
                    period_start=start,
                    ends_at=ends_at,
                    units_left=plan.units,
                    units_per_period=plan.units,
                    price=price,
                    period=plan.period,
                    trial=False,
                    next_plan_id=None,
                    updated_at=now,
                )
                .returning(c.id, c.user_id, c.units_left),
            ),
            ledger.Step(
                "moved",
                lambda p: ledger.balance_step(
                    p["holding"].user_id, amount=-price, conditions=(_users.c.balance >= price,)
                ),
            ),
            ledger.Step(
                "entry",
                lambda p: ledger.entry(
                    p["moved"],
                    kind=LedgerKind.RENEWAL,
                    amount=-price,
                    free_delta=0,
                    key=key,
                    reason=plan.code,
                    units_delta=plan.units - holding.units_left,
                    units_after=p["holding"].units_left,
                    holding_id=p["holding"].id,
                    plan_id=plan.id,
                    where=p["holding"].user_id == p["moved"].id,
                ),
            ),
        ],
    )
    if rows["holding"] is None:
        return []  # rolled over by someone else meanwhile
    if rows["entry"] is None:  # never with the user's row locked; undo the update with it
        raise PlanError(f"holding {holding.id}: the renewal to period {number} did not complete")
    balance = rows["moved"].balance
    notice = f"{NoticeKind.PLAN_RENEWED.value}:{holding.id}:{number}"
    await notices.add(
        session,
        key=notice,
        kind=NoticeKind.PLAN_RENEWED,
        user_id=holding.user_id,
        amount=price,
        balance_after=balance,
        plan_id=plan.id,
        holding_id=holding.id,
    )
    return [
        RollOverEvent(
            RENEWED,
            holding.user_id,
            holding_id=holding.id,
            plan_code=plan.code,
            period_no=number,
            price=price,
            units=plan.units,
            ends_at=ends_at,
            balance_after=balance,
            notice_key=notice,
        )
    ]


async def _end(
    session: AsyncSession, holding: Any, reason: EndReason, now: datetime, *, price: int = 0
) -> list[RollOverEvent]:
    """End a holding: status ended, its units gone with a ``plan_end:<holding>`` entry. The
    user is told (a subscription that ended: with a top-up button when money was short), but
    not of a subscription replaced by the one they chose (the change's message says it)."""
    c = _holdings.c
    rows = await ledger.run(
        session,
        [
            ledger.Step(
                "holding",
                lambda _: update(_holdings)
                .where(
                    c.id == holding.id,
                    c.period_no == holding.period_no,
                    c.status == HoldingStatus.ACTIVE.value,
                )
                .values(
                    status=HoldingStatus.ENDED.value,
                    ended_at=now,
                    end_reason=reason.value,
                    units_left=0,
                    next_plan_id=None,
                    updated_at=now,
                )
                .returning(c.id, c.user_id),
            ),
            ledger.Step(
                "moved",
                lambda p: select(
                    _users.c.id, _users.c.balance, _users.c.free_operations_left
                ).where(_users.c.id == p["holding"].user_id),
            ),
            ledger.Step(
                "entry",
                lambda p: ledger.entry(
                    p["moved"],
                    kind=LedgerKind.PLAN_END,
                    amount=0,
                    free_delta=0,
                    key=f"plan_end:{holding.id}",
                    reason=reason.value,
                    units_delta=-holding.units_left,
                    units_after=0,
                    holding_id=p["holding"].id,
                    plan_id=holding.plan_id,
                    where=p["holding"].user_id == p["moved"].id,
                ),
            ),
        ],
    )
    if rows["holding"] is None:
        return []
    if rows["entry"] is None:
        raise PlanError(f"holding {holding.id}: its end did not complete")
    if reason == EndReason.REPLACED:
        return []
    kind = NoticeKind.PACKAGE_EXPIRED if reason == EndReason.EXPIRED else NoticeKind.PLAN_ENDED
    key = f"{kind.value}:{holding.id}"
    balance = rows["moved"].balance
    await notices.add(
        session,
        key=key,
        kind=kind,
        user_id=holding.user_id,
        amount=price,  # no money: what the renewal would have cost
        balance_after=balance,
        reason=reason.value,
        plan_id=holding.plan_id,
        holding_id=holding.id,
    )
    plan = await _plan_by_id(session, holding.plan_id)
    return [
        RollOverEvent(
            EXPIRED if reason == EndReason.EXPIRED else ENDED,
            holding.user_id,
            holding_id=holding.id,
            plan_code=plan.code,
            period_no=holding.period_no,
            units=holding.units_left,
            ends_at=aware(holding.ends_at) if holding.ends_at else None,
            reason=reason.value,
            price=price,
            balance_after=balance,
            notice_key=key,
        )
    ]


async def _free_renewal(
    session: AsyncSession, settings: Settings, user_id: int, now: datetime
) -> RollOverEvent | None:
    """Top the free operations back up to FREE_OPERATIONS_COUNT, once per period: the
    conditional update of ``free_renewed_at`` to the period's start, then (if any are
    missing) the ``free_renewal:<user>:<n>`` entry. Never takes any away."""
    row = (await session.execute(select(*_USER).where(_users.c.id == user_id))).one()
    period = _free_period(settings, row.created_at, row.free_renewed_at, now)
    if period is None:
        return None
    number, start = period
    left = await session.scalar(
        update(_users)
        .where(
            _users.c.id == user_id,
            or_(_users.c.free_renewed_at.is_(None), _users.c.free_renewed_at < start),
        )
        .values(free_renewed_at=start)
        .returning(_users.c.free_operations_left)
    )
    if left is None or left >= settings.FREE_OPERATIONS_COUNT:
        return None
    delta = settings.FREE_OPERATIONS_COUNT - left
    moved = await ledger.move(
        session,
        user_id=user_id,
        kind=LedgerKind.FREE_RENEWAL,
        key=f"free_renewal:{user_id}:{number}",
        free_delta=delta,
        conditions=(_users.c.free_operations_left == left,),
        reason=f"every {settings.FREE_OPERATIONS_RENEW_DAYS} days",
    )
    if moved is None:
        raise PlanError(f"user {user_id}: the free renewal {number} did not complete")
    return RollOverEvent(
        FREE_RENEWED, user_id, period_no=number, free_delta=delta, balance_after=moved.balance
    )
