"""What a user has and what the next charge would take, read-only: for the screens.

* :func:`wallet` — the balance, the free operations, the subscription holding (its quota
  left, when it resets, auto-renewal, the plan chosen for the next period), the packages,
  the discount on balance-paid operations and the operation types the user's plans unlock.
* :func:`quote` — which ONE source the next charge of a type would spend from, what it would
  take and what would stay: the words of the confirmation ("Спишется 2 операции из
  подписки, останется 18"). It applies the charge's own rules (``billing.operations``):
  access first (a locked type is refused), then ``SPENDING_ORDER``, the first source that
  covers the whole price, never split; rubles = units × price less the best discount.
  ``tests/billing/test_wallet.py`` holds the two to agreement over many states.
* :func:`history` — the user's own ledger, newest first, a page at a time, with what each
  entry was about (the operation's type, the plan, the holding's end reason).

Nothing here writes; nothing here rolls a period over (``billing.plans.roll_over`` does, and
the screens call it first). A quote is a prediction: the charge decides under its lock, and
a caller that must hold the user to a quote (the confirmation) compares and re-checks.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from billing import ai_models
from billing.errors import UserNotFound
from billing.models import (
    Funding,
    HoldingStatus,
    LedgerEntry,
    Operation,
    OperationStatus,
    Plan,
    PlanKind,
    User,
    UserPlan,
    utcnow,
)
from billing.prices import discounted, operation_type, price_for, units_of
from billing.settings import Settings


@dataclass(frozen=True)
class PlanInfo:
    """A plan of the catalogue, as the screens show it."""

    id: int
    code: str
    kind: str
    name_ru: str
    name_en: str
    price: int
    period: str | None
    units: int
    expires_days: int | None
    discount_percent: int
    unlocks: tuple[str, ...] | None  # None: every type
    free_operations: int
    trial_days: int
    is_default: bool
    sort_order: int
    archived: bool

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_ru

    def unlocks_type(self, op_type: str) -> bool:
        return self.unlocks is None or op_type in self.unlocks


def plan_info(plan: Any) -> PlanInfo:
    """A :class:`PlanInfo` from a ``Plan`` row (or any object with its attributes)."""
    unlocks = plan.unlocks
    return PlanInfo(
        id=plan.id,
        code=plan.code,
        kind=plan.kind,
        name_ru=plan.name_ru,
        name_en=plan.name_en,
        price=plan.price,
        period=plan.period,
        units=plan.units,
        expires_days=plan.expires_days,
        discount_percent=plan.discount_percent,
        unlocks=None if unlocks is None else tuple(str(u) for u in unlocks),
        free_operations=plan.free_operations,
        trial_days=plan.trial_days,
        is_default=bool(plan.is_default),
        sort_order=plan.sort_order,
        archived=plan.archived_at is not None,
    )


@dataclass(frozen=True)
class Holding:
    """An active holding (a subscription or a package) and its plan."""

    id: int
    kind: str
    plan: PlanInfo
    units_left: int
    units_per_period: int
    price: int
    period: str | None
    period_no: int
    period_start: datetime
    ends_at: datetime | None
    auto_renew: bool
    trial: bool
    next_plan: PlanInfo | None

    def usable(self, now: datetime) -> bool:
        """Not past its end: a subscription whose period is over, or an expired package,
        is spent from by nobody until it is rolled over (renewed or ended)."""
        return self.ends_at is None or _aware(self.ends_at) > now


@dataclass(frozen=True)
class Wallet:
    user_id: int
    balance: int
    free_left: int
    free_granted: int
    default_plan: PlanInfo | None
    subscription: Holding | None
    packages: tuple[Holding, ...]
    discount_percent: int  # the best among the default plan and the held plans
    allowed: frozenset[str] | None  # the types the user may use; None: every type
    confirm_charges: bool  # ask before a charge (the user's choice, else the default)
    now: datetime = field(default_factory=utcnow)
    # The prices in units the operator set in the model catalogue (type -> units).
    set_units: dict[str, int] = field(default_factory=dict)

    def allows(self, op_type: str) -> bool:
        return self.allowed is None or op_type in self.allowed

    @property
    def on_default_plan(self) -> bool:
        return self.subscription is None

    @property
    def package_units(self) -> int:
        return sum(p.units_left for p in self.packages if p.usable(self.now))


@dataclass(frozen=True)
class Quote:
    """What the next charge of ``op_type`` would do.

    ``source``: the funding it would use (``none`` for a free type), or None when nothing
    covers it (``locked``: the plans do not unlock the type; else not enough anywhere).
    ``takes`` / ``left``: in the source's own counter — free operations, units of the
    holding, or kopecks of the balance."""

    op_type: str
    units: int
    price: int  # kopecks the balance would pay (with the discount), whatever the source
    full_price: int  # kopecks before the discount
    discount_percent: int
    source: Funding | None
    locked: bool = False
    holding_id: int | None = None
    holding_plan: PlanInfo | None = None
    period_no: int | None = None
    takes: int = 0
    left: int = 0
    balance: int = 0  # the balance now (for "not enough": the price and the balance)

    @property
    def covered(self) -> bool:
        return self.source is not None

    def key(self) -> tuple[Any, ...]:
        """What the user is shown and agrees to: the same key, the same promise."""
        return (
            self.op_type,
            self.source.value if self.source is not None else None,
            self.locked,
            self.holding_id,
            self.period_no,
            self.units,
            self.price,
            self.takes,
            self.left,
        )


def _aware(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back (stored in UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def _plans_by_id(session: AsyncSession, ids: set[int]) -> dict[int, PlanInfo]:
    if not ids:
        return {}
    rows = await session.scalars(select(Plan).where(Plan.id.in_(ids)))
    return {p.id: plan_info(p) for p in rows}


async def default_plan(session: AsyncSession) -> PlanInfo | None:
    row = await session.scalar(select(Plan).where(Plan.is_default.is_(True)))
    return plan_info(row) if row is not None else None


async def catalogue(session: AsyncSession, *, include_archived: bool = False) -> list[PlanInfo]:
    """The plans, by sort order (on sale only, unless ``include_archived``)."""
    query = select(Plan).order_by(Plan.sort_order, Plan.id)
    if not include_archived:
        query = query.where(Plan.archived_at.is_(None))
    return [plan_info(p) for p in await session.scalars(query)]


async def wallet(
    session: AsyncSession, settings: Settings, *, user_id: int, now: datetime | None = None
) -> Wallet:
    """Everything the user holds now (as stored: call ``roll_over`` first to see a period
    that is due as renewed)."""
    now = now or utcnow()
    user = (
        await session.execute(
            select(
                User.balance,
                User.free_operations_left,
                User.free_operations_granted,
                User.confirm_charges,
            ).where(User.id == user_id)
        )
    ).one_or_none()
    if user is None:
        raise UserNotFound(user_id)
    rows = list(
        await session.scalars(
            select(UserPlan)
            .where(UserPlan.user_id == user_id, UserPlan.status == HoldingStatus.ACTIVE.value)
            .order_by(UserPlan.id)
        )
    )
    plan_ids = {r.plan_id for r in rows} | {r.next_plan_id for r in rows if r.next_plan_id}
    plans = await _plans_by_id(session, plan_ids)
    default = await default_plan(session)
    holdings = [
        Holding(
            id=r.id,
            kind=r.kind,
            plan=plans[r.plan_id],
            units_left=r.units_left,
            units_per_period=r.units_per_period,
            price=r.price,
            period=r.period,
            period_no=r.period_no,
            period_start=_aware(r.period_start),
            ends_at=_aware(r.ends_at) if r.ends_at is not None else None,
            auto_renew=bool(r.auto_renew),
            trial=bool(r.trial),
            next_plan=plans.get(r.next_plan_id) if r.next_plan_id else None,
        )
        for r in rows
    ]
    subscription = next((h for h in holdings if h.kind == PlanKind.SUBSCRIPTION), None)
    packages = tuple(
        sorted(
            (h for h in holdings if h.kind == PlanKind.PACKAGE),
            key=lambda h: (h.ends_at is None, h.ends_at or now, h.id),
        )
    )
    # Access and the discount come from the default plan and the holdings not past their
    # end (one past it waits for its roll-over and grants nothing meanwhile), as the charge.
    granting = [h.plan for h in holdings if h.usable(now)]
    granting += [default] if default is not None else []
    allowed: frozenset[str] | None = frozenset()
    for plan in granting:
        if plan.unlocks is None:
            allowed = None
            break
        allowed = allowed | frozenset(plan.unlocks)  # type: ignore[operator]
    confirm = user.confirm_charges
    return Wallet(
        user_id=user_id,
        balance=user.balance,
        free_left=user.free_operations_left,
        free_granted=user.free_operations_granted,
        default_plan=default,
        subscription=subscription,
        packages=packages,
        discount_percent=max((p.discount_percent for p in granting), default=0),
        allowed=allowed,
        confirm_charges=settings.CONFIRM_CHARGES_DEFAULT if confirm is None else bool(confirm),
        now=now,
        set_units=(await ai_models.catalogue(session)).set_units(),
    )


def quote_from(held: Wallet, settings: Settings, op_type: str) -> Quote:
    """The quote of ``op_type`` for a wallet already read (see :func:`quote`)."""
    kind = operation_type(op_type).value
    units = units_of(kind, settings, held.set_units.get(kind))
    full = price_for(kind, settings, held.set_units.get(kind))
    price = discounted(full, held.discount_percent)
    base = {
        "op_type": kind,
        "units": units,
        "price": price,
        "full_price": full,
        "discount_percent": held.discount_percent,
        "balance": held.balance,
    }
    if not held.allows(kind):
        return Quote(**base, source=None, locked=True)
    if units == 0:
        return Quote(**base, source=Funding.NONE)
    now = held.now
    for source in settings.SPENDING_ORDER:
        if source == Funding.FREE and held.free_left >= 1:
            return Quote(**base, source=Funding.FREE, takes=1, left=held.free_left - 1)
        if source == Funding.SUBSCRIPTION:
            sub = held.subscription
            if sub is not None and sub.usable(now) and sub.units_left >= units:
                return Quote(
                    **base,
                    source=Funding.SUBSCRIPTION,
                    holding_id=sub.id,
                    holding_plan=sub.plan,
                    period_no=sub.period_no,
                    takes=units,
                    left=sub.units_left - units,
                )
        if source == Funding.PACKAGE:
            for pack in held.packages:  # oldest expiry first, never-expiring last, then id
                if pack.usable(now) and pack.units_left >= units:
                    return Quote(
                        **base,
                        source=Funding.PACKAGE,
                        holding_id=pack.id,
                        holding_plan=pack.plan,
                        takes=units,
                        left=pack.units_left - units,
                    )
        if source == Funding.BALANCE and held.balance >= price:
            if price == 0:  # a 100 % discount: the charge records a free-of-charge type
                return Quote(**base, source=Funding.NONE)
            return Quote(**base, source=Funding.BALANCE, takes=price, left=held.balance - price)
    return Quote(**base, source=None)


async def quote(
    session: AsyncSession,
    settings: Settings,
    *,
    user_id: int,
    op_type: str,
    now: datetime | None = None,
) -> Quote:
    """Which source the next charge of ``op_type`` would use, what it takes, what stays."""
    held = await wallet(session, settings, user_id=user_id, now=now)
    return quote_from(held, settings, op_type)


async def lock_for_quote(session: AsyncSession, *, user_id: int) -> None:
    """Hold the user's counters still until the transaction ends (``SELECT … FOR UPDATE``
    on the user and their active holdings; SQLite's write lock is taken at BEGIN), so a
    quote read after it is what a charge in the same transaction does."""
    await session.execute(select(User.id).where(User.id == user_id).with_for_update())
    await session.execute(
        select(UserPlan.id)
        .where(UserPlan.user_id == user_id, UserPlan.status == HoldingStatus.ACTIVE.value)
        .with_for_update()
    )


# -- the history -------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryItem:
    id: int
    created_at: datetime
    kind: str  # LedgerKind
    amount: int  # signed kopecks
    free_delta: int
    units_delta: int
    balance_after: int
    free_after: int
    units_after: int | None
    reason: str | None
    op_type: str | None  # the operation charged or refunded
    funding: str | None  # its source
    plan: PlanInfo | None  # the plan bought, renewed, ended, or charged from
    end_reason: str | None  # a plan_end's: canceled, no_money, archived, expired, replaced


async def history(
    session: AsyncSession,
    *,
    user_id: int,
    before_id: int | None = None,
    after_id: int | None = None,
    limit: int = 10,
    kinds: Collection[str] | None = None,
) -> list[HistoryItem]:
    """The user's ledger entries, newest first: ``limit`` entries older than ``before_id``
    (or, with ``after_id``, the ``limit`` entries just newer than it, still newest first);
    with ``kinds``, only entries of those ledger kinds."""
    holding = aliased(UserPlan)
    plan_id = func.coalesce(LedgerEntry.plan_id, holding.plan_id)
    query = (
        select(
            LedgerEntry.id,
            LedgerEntry.created_at,
            LedgerEntry.kind,
            LedgerEntry.amount,
            LedgerEntry.free_delta,
            LedgerEntry.units_delta,
            LedgerEntry.balance_after,
            LedgerEntry.free_after,
            LedgerEntry.units_after,
            LedgerEntry.reason,
            Operation.type.label("op_type"),
            Operation.funding.label("funding"),
            plan_id.label("plan_id"),
            holding.end_reason.label("end_reason"),
        )
        .outerjoin(Operation, Operation.id == LedgerEntry.operation_id)
        .outerjoin(holding, holding.id == LedgerEntry.holding_id)
        .where(LedgerEntry.user_id == user_id)
    )
    if kinds is not None:
        query = query.where(LedgerEntry.kind.in_(list(kinds)))
    if after_id is not None:
        query = query.where(LedgerEntry.id > after_id).order_by(LedgerEntry.id).limit(limit)
    else:
        if before_id is not None:
            query = query.where(LedgerEntry.id < before_id)
        query = query.order_by(LedgerEntry.id.desc()).limit(limit)
    rows = list((await session.execute(query)).all())
    if after_id is not None:
        rows.reverse()
    plans = await _plans_by_id(session, {r.plan_id for r in rows if r.plan_id is not None})
    return [
        HistoryItem(
            id=r.id,
            created_at=_aware(r.created_at),
            kind=r.kind,
            amount=r.amount,
            free_delta=r.free_delta,
            units_delta=r.units_delta or 0,
            balance_after=r.balance_after,
            free_after=r.free_after,
            units_after=r.units_after,
            reason=r.reason,
            op_type=r.op_type,
            funding=r.funding,
            plan=plans.get(r.plan_id) if r.plan_id is not None else None,
            end_reason=r.end_reason if r.kind == "plan_end" else None,
        )
        for r in rows
    ]


async def has_history(
    session: AsyncSession,
    *,
    user_id: int,
    before_id: int | None = None,
    after_id: int | None = None,
    kinds: Collection[str] | None = None,
) -> bool:
    """Whether there are entries older than ``before_id`` / newer than ``after_id`` (of
    ``kinds``, when given)."""
    conditions = [LedgerEntry.user_id == user_id]
    if kinds is not None:
        conditions.append(LedgerEntry.kind.in_(list(kinds)))
    if before_id is not None:
        conditions.append(LedgerEntry.id < before_id)
    if after_id is not None:
        conditions.append(LedgerEntry.id > after_id)
    found = await session.scalar(select(LedgerEntry.id).where(and_(*conditions)).limit(1))
    return found is not None


# -- the operations -----------------------------------------------------------------------


@dataclass(frozen=True)
class OperationItem:
    """One of the user's operations, as the Mini App lists them."""

    id: int
    type: str
    status: str  # OperationStatus
    funding: str  # Funding: the source it was charged from
    price: int  # kopecks taken from the balance (0 unless funding is balance)
    units: int
    created_at: datetime
    finished_at: datetime | None
    error: str | None  # why it failed ("<reason code>: <detail>"), redacted when stored
    chat_id: int | None
    status_message_id: int | None
    # The message the result was delivered as (None: not delivered, or before it was kept).
    result_message_id: int | None = None


def _result_message_id(ref: dict[str, Any] | None) -> int | None:
    """The message id a delivered result's ref names (workers.delivery.send_result)."""
    if not isinstance(ref, dict):
        return None
    found = ref.get("photo_message_id", ref.get("document_message_id"))
    return found if isinstance(found, int) and not isinstance(found, bool) else None


@dataclass(frozen=True)
class DeliveredResult:
    """Where a user's succeeded operation's result went, to point at it or send it again."""

    operation_id: int
    type: str
    created_at: datetime
    chat_id: int
    message_id: int | None
    file_id: str | None  # the result's Telegram file id (kept since it was recorded)
    photo: bool  # sent as a photo (else as a document)


async def delivered_result(
    session: AsyncSession, *, user_id: int, operation_id: int
) -> DeliveredResult | None:
    """The user's own succeeded operation ``operation_id`` and its delivered result; None
    when it is another user's, not there, or has no result in a chat."""
    row = (
        await session.execute(
            select(
                Operation.id,
                Operation.type,
                Operation.created_at,
                Operation.chat_id,
                Operation.result_ref,
            ).where(
                Operation.id == operation_id,
                Operation.user_id == user_id,
                Operation.status == OperationStatus.SUCCEEDED.value,
            )
        )
    ).one_or_none()
    if row is None or row.chat_id is None or not isinstance(row.result_ref, dict):
        return None
    file_id = row.result_ref.get("file_id")
    return DeliveredResult(
        operation_id=row.id,
        type=row.type,
        created_at=_aware(row.created_at),
        chat_id=row.chat_id,
        message_id=_result_message_id(row.result_ref),
        file_id=file_id if isinstance(file_id, str) else None,
        photo="photo_message_id" in row.result_ref,
    )


async def operations(
    session: AsyncSession, *, user_id: int, before_id: int | None = None, limit: int = 20
) -> list[OperationItem]:
    """The user's operations, newest first, ``limit`` older than ``before_id``."""
    query = select(Operation).where(Operation.user_id == user_id)
    if before_id is not None:
        query = query.where(Operation.id < before_id)
    rows = await session.scalars(query.order_by(Operation.id.desc()).limit(limit))
    return [
        OperationItem(
            id=r.id,
            type=r.type,
            status=r.status,
            funding=r.funding,
            price=r.price,
            units=r.units,
            created_at=_aware(r.created_at),
            finished_at=_aware(r.finished_at) if r.finished_at is not None else None,
            error=r.error,
            chat_id=r.chat_id,
            status_message_id=r.status_message_id,
            result_message_id=_result_message_id(r.result_ref)
            if r.status == OperationStatus.SUCCEEDED.value
            else None,
        )
        for r in rows
    ]


async def plans_unlocking(session: AsyncSession, op_type: str) -> list[PlanInfo]:
    """The plans on sale that unlock ``op_type`` (for "🔒 … открывается в планах …")."""
    kind = operation_type(op_type).value
    return [p for p in await catalogue(session) if not p.is_default and p.unlocks_type(kind)]


async def allowed_types(
    session: AsyncSession, *, user_id: int | None = None, telegram_id: int | None = None
) -> frozenset[str] | None:
    """The operation types the user's plans unlock (None: every type), without the rest of
    the wallet: the default plan's unlocks, or those of the plans of their active holdings.
    One query when the default plan unlocks everything (the usual case)."""
    default = (
        await session.execute(select(Plan.unlocks).where(Plan.is_default.is_(True)))
    ).first()
    if default is not None and default.unlocks is None:
        return None
    allowed = set(default.unlocks) if default is not None else set()
    query = (
        select(Plan.unlocks)
        .join(UserPlan, UserPlan.plan_id == Plan.id)
        .where(
            UserPlan.status == HoldingStatus.ACTIVE.value,
            # A subscription due for its renewal still counts: the charge rolls it over
            # before it checks access (and refuses, nothing written, if it ended instead).
            or_(
                UserPlan.ends_at.is_(None),
                UserPlan.ends_at > utcnow(),
                and_(
                    UserPlan.kind == PlanKind.SUBSCRIPTION.value,
                    UserPlan.auto_renew.is_(True),
                ),
            ),
        )
    )
    if user_id is not None:
        query = query.where(UserPlan.user_id == user_id)
    elif telegram_id is not None:
        query = query.join(User, User.id == UserPlan.user_id).where(
            User.telegram_id == telegram_id
        )
    else:
        raise ValueError("allowed_types needs user_id or telegram_id")
    for (unlocks,) in (await session.execute(query)).all():
        if unlocks is None:
            return None
        allowed |= set(unlocks)
    return frozenset(allowed)


async def wants_confirmation(session: AsyncSession, settings: Settings, *, user_id: int) -> bool:
    """Whether to ask before charging this user: their /settings choice, else the
    operator's CONFIRM_CHARGES_DEFAULT."""
    chosen = await session.scalar(select(User.confirm_charges).where(User.id == user_id))
    return settings.CONFIRM_CHARGES_DEFAULT if chosen is None else bool(chosen)
