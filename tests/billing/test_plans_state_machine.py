"""Issue 14's proof at the billing level: a Hypothesis state machine over everything that moves
a plan's counters — charge (several types, several units each), refund and post of an
operation, buying subscriptions and packages (a trial, a package with an expiry, one that
never expires) from the balance, top-ups through the credit path, admin adjustments, the clock
moving, roll-overs on read and by the scheduled pass (renewals, ends, package expiries, plan
changes, free-operation renewals), auto-renewal off/on, a change chosen mid-period, plan edits
and archiving — on both databases, in both spending orders.

After every step that wrote anything: the ledger audit is clean, and the database equals a
model of our own written from PLANS_SPEC.md (balance, free operations, every holding's units,
period, end, renewal and next plan, every operation's source, units and status); after every
step, what is due is the model's; every result (the charge's source and units, the refund's
units or why none, the purchase, the roll-over's events) is the model's, and so is every
refusal (locked, not enough, not for sale, no subscription, a repeated request). Settings
vary by run: OPERATION_UNITS (seed 003's generate=2 among them), FREE_OPERATIONS_COUNT,
FREE_OPERATIONS_RENEW_DAYS, a default plan that does not unlock every type; the two users
start with money and plans bought.

The clock. The charge and the refund decide "ends_at > now" with a Python ``now``
(``billing.models.utcnow`` as imported by ``billing.operations``, passed to SQL as a bound
parameter, never SQL ``now()``); ``roll_over`` and ``buy_plan_from_balance`` take ``now=``.
So the machine keeps a virtual clock (the wall clock when the example starts, moved only by
its ``advance`` rule) and gives it to all of them: ``operations.utcnow`` and ``plans.utcnow``
return it for the example's duration, and every ``now=`` is it. Nothing is written behind the
billing's back. Timestamps the database writes itself (users.created_at) are read back and
used by the model as they are.
"""

from __future__ import annotations

import asyncio
import calendar
import copy
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, Phase
from hypothesis import event as hypothesis_event
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from billing import accounts, operations, payments, plans
from billing.audit import audit
from billing.db import make_engine, make_sessionmaker
from billing.errors import (
    BillingError,
    DuplicateRequest,
    InsufficientFunds,
    OperationLocked,
    OperationNotRefundable,
)
from billing.models import Operation, Plan, User, UserPlan
from tests.conftest import clean_tables, make_settings

DEFAULT_ORDER = ("free", "subscription", "package", "balance")
SEED_003_ORDER = ("subscription", "free", "package", "balance")
UNIT = 1_000  # PRICE_PER_OPERATION=10 (make_settings), in kopecks
OP_TYPES = ("generate", "edit", "upscale", "face_swap", "add_text")
BUYABLE = ("pro", "pack10", "trial", "packn", "pack7", "free")
SUBSCRIPTION_CHANGES = (
    "renew off",
    "renew on",
    "next pro",
    "next trial",
    "next free",
    "next pack7",
)
# Most steps act for the first user (sequences of one user's life get long enough); the
# second user's steps show nothing of theirs moves with the first's.
WHO = st.sampled_from([0, 0, 0, 1])
SUBSCRIPTIONS = ("pro", "trial", "free")
UNITS_PROFILES = ({}, {"generate": 2, "edit": 2}, {"generate": 3, "upscale": 0})
ALL_BUT_FACE_SWAP = ["generate", "edit", "merge", "retouch", "upscale", "add_text"]
STEPS = (
    timedelta(hours=1),
    timedelta(days=1),
    timedelta(days=3),
    timedelta(days=4),
    timedelta(days=7),
    timedelta(days=8),
    timedelta(days=29),
    timedelta(days=31),
    timedelta(days=31),
    timedelta(days=91),
)


# ---------------------------------------------------------------------------------------
# The model: PLANS_SPEC.md in plain Python, one user at a time.


class Refused(Exception):
    """The model says the call is refused with this billing error (nothing changes)."""

    def __init__(self, error: type[BillingError]):
        super().__init__(error.__name__)
        self.error = error


@dataclass
class MPlan:
    code: str
    kind: str
    price: int
    period: str | None
    units: int
    expires_days: int | None
    discount: int
    unlocks: frozenset[str] | None
    free_operations: int
    trial_days: int
    is_default: bool = False
    archived: bool = False


@dataclass
class MHolding:
    plan: str
    kind: str
    units_left: int
    ends_at: datetime | None
    auto_renew: bool
    trial: bool
    id: int | None = None  # None until the database's row is known
    seq: int = 0  # creation order in the model
    status: str = "active"
    period_no: int = 1
    next_plan: str | None = None
    end_reason: str | None = None

    def live(self, now: datetime) -> bool:
        return self.status == "active" and (self.ends_at is None or self.ends_at > now)


@dataclass
class MOperation:
    id: int
    funding: str
    units: int
    price: int
    holding_id: int | None
    period_no: int | None
    status: str = "queued"


@dataclass
class MUser:
    id: int
    created_at: datetime
    balance: int = 0
    free: int = 0
    free_renewed_at: datetime | None = None
    holdings: list[MHolding] = field(default_factory=list)
    ops: dict[int, MOperation] = field(default_factory=dict)


def add_period(start: datetime, period: str) -> datetime:
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(weeks=1)
    months = 12 if period == "year" else 1
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return start.replace(
        year=year, month=month, day=min(start.day, calendar.monthrange(year, month)[1])
    )


_seq = count(1)
STATS: Counter[str] = Counter()  # what the runs did, printed by the test (pytest -s)


def event(label: str) -> None:
    hypothesis_event(label)
    STATS[label] += 1


def _aware(moment: datetime | None) -> datetime | None:
    return None if moment is None else plans.aware(moment)


class Model:
    def __init__(self, catalogue: dict[str, MPlan], settings: Any):
        self.catalogue = catalogue
        self.settings = settings
        self.order = tuple(settings.SPENDING_ORDER)

    # -- reading

    @staticmethod
    def subscription(user: MUser) -> MHolding | None:
        active = [h for h in user.holdings if h.kind == "subscription" and h.status == "active"]
        assert len(active) <= 1, active
        return active[0] if active else None

    @staticmethod
    def due(user: MUser, now: datetime) -> list[MHolding]:
        due = [
            h
            for h in user.holdings
            if h.status == "active" and h.ends_at is not None and h.ends_at <= now
        ]
        return sorted(due, key=lambda h: (h.ends_at, h.id))

    def free_period(self, user: MUser, now: datetime) -> tuple[int, datetime] | None:
        days = self.settings.FREE_OPERATIONS_RENEW_DAYS
        if not days:
            return None
        span = timedelta(days=days)
        number = (now - user.created_at) // span
        if number < 1:
            return None
        start = user.created_at + number * span
        if user.free_renewed_at is not None and user.free_renewed_at >= start:
            return None
        return number, start

    def units_of(self, op_type: str) -> int:
        return self.settings.OPERATION_UNITS.get(op_type, 0 if op_type == "add_text" else 1)

    def default(self) -> MPlan:
        return next(p for p in self.catalogue.values() if p.is_default)

    def held_plans(self, user: MUser, now: datetime) -> list[MPlan]:
        held = [self.catalogue[h.plan] for h in user.holdings if h.live(now)]
        return [self.default(), *held]

    # -- roll-over

    def roll_over(self, user: MUser, now: datetime) -> list[str]:
        events: list[str] = []
        for holding in self.due(user, now):
            events += self._roll_holding(user, holding, now)
        period = self.free_period(user, now)
        if period is not None:
            user.free_renewed_at = period[1]
            if user.free < self.settings.FREE_OPERATIONS_COUNT:
                user.free = self.settings.FREE_OPERATIONS_COUNT
                events.append("free_renewed")
        return events

    @staticmethod
    def _end(holding: MHolding, reason: str) -> None:
        holding.status, holding.end_reason = "ended", reason
        holding.units_left, holding.next_plan = 0, None

    def _roll_holding(self, user: MUser, holding: MHolding, now: datetime) -> list[str]:
        if holding.kind == "package":
            self._end(holding, "expired")
            return ["expired"]
        if not holding.auto_renew:
            self._end(holding, "canceled")
            return ["ended"]
        target = self.catalogue[holding.next_plan or holding.plan]
        if target.archived or target.is_default:
            self._end(holding, "archived")
            return ["ended"]
        changing = target.code != holding.plan
        trial = changing and self._trial_for(user, target)
        price = 0 if trial else target.price
        if user.balance < price:
            self._end(holding, "no_money")
            return ["ended"]
        if changing:
            self._end(holding, "replaced")
            self._create(user, target, trial, now)
            return ["changed"]
        start = holding.ends_at
        assert start is not None and target.period is not None
        if add_period(start, target.period) <= now:
            start = now  # long overdue: one period from now, not back-paid
        holding.period_no += 1
        holding.ends_at = add_period(start, target.period)
        holding.units_left = target.units
        holding.trial, holding.next_plan = False, None
        user.balance -= price
        return ["renewed"]

    @staticmethod
    def _trial_for(user: MUser, plan: MPlan) -> bool:
        return (
            plan.kind == "subscription"
            and plan.trial_days > 0
            and all(h.plan != plan.code for h in user.holdings)
        )

    def _create(self, user: MUser, plan: MPlan, trial: bool, now: datetime) -> MHolding:
        price = 0 if trial else plan.price
        assert user.balance >= price
        if plan.kind == "subscription":
            assert plan.period is not None
            ends_at = (
                now + timedelta(days=plan.trial_days) if trial else add_period(now, plan.period)
            )
        else:
            ends_at = now + timedelta(days=plan.expires_days) if plan.expires_days else None
        holding = MHolding(
            plan=plan.code,
            kind=plan.kind,
            units_left=plan.units,
            ends_at=ends_at,
            auto_renew=plan.kind == "subscription",
            trial=trial,
            seq=next(_seq),
        )
        user.holdings.append(holding)
        user.balance -= price
        user.free += plan.free_operations
        return holding

    # -- the user's actions

    def charge(self, user: MUser, op_type: str, now: datetime) -> dict[str, Any]:
        """The charge: what is due is rolled over first (PLANS_SPEC: roll_over before a
        charge), then access, then the first source in SPENDING_ORDER that covers it all."""
        rolled = self.roll_over(user, now)
        units = self.units_of(op_type)
        plans_held = self.held_plans(user, now)
        if not any(p.unlocks is None or op_type in p.unlocks for p in plans_held):
            raise Refused(OperationLocked)
        result = {"rolled": rolled, "units": units, "holding": None, "period_no": None}
        if units == 0:
            return {**result, "funding": "none", "price": 0}
        discount = max(p.discount for p in plans_held)
        price = (units * UNIT * (100 - discount) + 50) // 100
        for source in self.order:
            if source == "free" and user.free >= 1:
                user.free -= 1
                return {**result, "funding": "free", "price": 0}
            if source == "subscription":
                sub = self.subscription(user)
                if sub is not None and sub.live(now) and sub.units_left >= units:
                    sub.units_left -= units
                    return {
                        **result,
                        "funding": "subscription",
                        "price": 0,
                        "holding": sub,
                        "period_no": sub.period_no,
                    }
            if source == "package":
                packages = [
                    h
                    for h in user.holdings
                    if h.kind == "package" and h.live(now) and h.units_left >= units
                ]
                if packages:
                    pick = min(
                        packages,
                        key=lambda h: (h.ends_at is None, h.ends_at or now, h.id or 0),
                    )
                    pick.units_left -= units
                    return {**result, "funding": "package", "price": 0, "holding": pick}
            if source == "balance" and user.balance >= price:
                if price == 0:
                    return {**result, "funding": "none", "price": 0}
                user.balance -= price
                return {**result, "funding": "balance", "price": price}
        raise Refused(InsufficientFunds)

    def refund(self, user: MUser, op: MOperation, now: datetime) -> dict[str, Any] | None:
        if op.status == "succeeded":
            raise Refused(OperationNotRefundable)
        if op.status != "queued":
            return None
        op.status = "failed" if op.funding == "none" else "refunded"
        back = {"amount": 0, "free_back": 0, "units_back": 0, "not_carried": None}
        if op.funding == "free":
            user.free += 1
            back["free_back"] = 1
        elif op.funding == "balance":
            user.balance += op.price
            back["amount"] = op.price
        elif op.funding in ("subscription", "package"):
            holding = next(h for h in user.holdings if h.id == op.holding_id)
            if holding.live(now) and (
                holding.kind == "package" or holding.period_no == op.period_no
            ):
                holding.units_left += op.units
                back["units_back"] = op.units
            else:
                back["not_carried"] = (
                    "period_over" if op.funding == "subscription" else "plan_ended"
                )
        return back

    def buy(self, user: MUser, code: str, now: datetime) -> dict[str, Any]:
        plan = self.catalogue[code]
        if plan.is_default or plan.archived:
            raise Refused(plans.PlanNotForSale)
        if plan.kind == "subscription":
            current = self.subscription(user)
            if current is not None:
                same = current.plan == code
                current.next_plan = None if same else code
                current.auto_renew = True
                return {"status": "already_active" if same else "scheduled", "holding": current}
        trial = self._trial_for(user, plan)
        if user.balance < (0 if trial else plan.price):
            raise Refused(InsufficientFunds)
        holding = self._create(user, plan, trial, now)
        return {"status": "bought", "holding": holding, "trial": trial}

    def choose_next(self, user: MUser, code: str) -> None:
        plan = self.catalogue[code]
        if plan.kind != "subscription":
            raise Refused(plans.PlanNotForSale)
        current = self.subscription(user)
        if current is None:
            raise Refused(plans.NoActiveSubscription)
        if code != current.plan and (plan.is_default or plan.archived):
            raise Refused(plans.PlanNotForSale)
        current.next_plan = None if code == current.plan else code
        current.auto_renew = True

    def set_auto_renew(self, user: MUser, on: bool) -> None:
        current = self.subscription(user)
        if current is None:
            raise Refused(plans.NoActiveSubscription)
        current.auto_renew = on
        if not on:
            current.next_plan = None


# ---------------------------------------------------------------------------------------
# The machine


class PlansMachine(RuleBasedStateMachine):
    def __init__(
        self,
        url: str,
        order: tuple[str, ...],
        loop: asyncio.AbstractEventLoop,
        engine: AsyncEngine,
    ):
        super().__init__()
        self.url, self.order = url, order
        STATS["examples"] += 1
        clean_tables(url)
        # The test's loop and engine, shared by its examples: an engine per example compiled
        # every statement again.
        self.loop, self.engine = loop, engine
        self.sm = make_sessionmaker(self.engine)
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.keys = count(1)
        self.users: list[MUser] = []
        self.dirty = True  # something was written since the last audit
        self.patches = [
            mock.patch.object(operations, "utcnow", lambda: self.now),
            mock.patch.object(plans, "utcnow", lambda: self.now),
        ]
        for patch in self.patches:
            patch.start()

    def teardown(self) -> None:
        for patch in self.patches:
            patch.stop()

    # -- plumbing

    def run(self, work: Callable[[Any], Awaitable[Any]]) -> Any:
        """``work(session)`` in a transaction of its own: committed, or rolled back on a
        billing error (which is raised again)."""

        async def go() -> Any:
            async with self.sm() as session:
                try:
                    result = await work(session)
                except BillingError:
                    await session.rollback()
                    raise
                await session.commit()
                return result

        return self.loop.run_until_complete(go())

    def attempt(
        self, index: int, model_step: Callable[[MUser], Any], work: Callable[[Any], Awaitable[Any]]
    ) -> tuple[Any, Any, MUser]:
        """The model's step on a copy of the user, then the real one; the same refusal or
        none. On success the copy becomes the model (and learns new holdings' ids)."""
        user = copy.deepcopy(self.users[index])
        expected: Any = None
        refused: type[BillingError] | None = None
        try:
            expected = model_step(user)
        except Refused as refusal:
            refused = refusal.error
        try:
            actual = self.run(work)
        except BillingError as error:
            event(f"refused: {type(error).__name__}")
            assert refused is not None and isinstance(error, refused), (
                f"the model expected {refused.__name__ if refused else 'success'}, got {error!r}"
            )
            return None, None, self.users[index]
        assert refused is None, f"the model expected {refused.__name__}, the call gave {actual!r}"
        self.dirty = True
        self.users[index] = user
        self._learn_ids(user)
        return expected, actual, user

    def _learn_ids(self, user: MUser) -> None:
        new = [h for h in user.holdings if h.id is None]
        if not new:
            return

        async def ids(session: Any) -> list[int]:
            rows = await session.scalars(
                select(UserPlan.id).where(UserPlan.user_id == user.id).order_by(UserPlan.id)
            )
            return list(rows.all())

        known = {h.id for h in user.holdings}
        fresh = [i for i in self.run(ids) if i not in known]
        assert len(fresh) == len(new), f"new holdings in the database {fresh}, model {new}"
        for holding, holding_id in zip(sorted(new, key=lambda h: h.seq), fresh, strict=True):
            holding.id = holding_id

    # -- set-up

    @initialize(
        units=st.sampled_from(UNITS_PROFILES),
        renew_days=st.sampled_from([None, 7]),
        free_count=st.sampled_from([0, 2, 4]),
        default_unlocks=st.sampled_from([None, ALL_BUT_FACE_SWAP]),
        pro_units=st.sampled_from([2, 6, 30]),
        money=st.sampled_from([30_000, 100_000]),
        purchases=st.lists(st.tuples(WHO, st.sampled_from(BUYABLE[:-1])), max_size=4),
    )
    def set_up(self, units, renew_days, free_count, default_unlocks, pro_units, money, purchases):
        self.settings = make_settings(
            self.url,
            SPENDING_ORDER=",".join(self.order),
            OPERATION_UNITS=units,
            FREE_OPERATIONS_RENEW_DAYS=renew_days,
            FREE_OPERATIONS_COUNT=free_count,
        )

        async def catalogue(session: Any) -> list[MUser]:
            await plans.edit_plan(session, "pro", units=pro_units)
            await plans.edit_plan(session, "free", unlocks=default_unlocks)
            await plans.add_plan(
                session,
                code="trial",
                kind="subscription",
                name_ru="Проба",
                name_en="Trial",
                price=4_900,
                period="week",
                units=5,
                trial_days=3,
                free_operations=2,
            )
            await plans.add_plan(
                session,
                code="packn",
                kind="package",
                name_ru="Вечный",
                name_en="Forever",
                price=2_000,
                units=3,
                unlocks=["upscale", "add_text"],
            )
            await plans.add_plan(
                session,
                code="pack7",
                kind="package",
                name_ru="Неделя",
                name_en="Week",
                price=3_000,
                units=4,
                expires_days=7,
                discount_percent=5,
            )
            made = []
            for telegram_id in (501, 502):
                state, _ = await accounts.get_or_create_user(
                    session, telegram_id=telegram_id, free_operations=free_count
                )
                made.append(state.id)
                if money:
                    await accounts.adjust(session, user_id=state.id, amount=money, reason="gift")
            await session.flush()
            rows = await session.execute(
                select(User.id, User.created_at).where(User.id.in_(made)).order_by(User.id)
            )
            return [
                MUser(id=i, created_at=plans.aware(c), free=free_count, balance=money)
                for i, c in rows
            ]

        self.users = self.run(catalogue)

        async def read_plans(session: Any) -> dict[str, MPlan]:
            rows = (await session.scalars(select(Plan))).all()
            return {
                p.code: MPlan(
                    code=p.code,
                    kind=p.kind,
                    price=p.price,
                    period=p.period,
                    units=p.units,
                    expires_days=p.expires_days,
                    discount=p.discount_percent,
                    unlocks=None if p.unlocks is None else frozenset(p.unlocks),
                    free_operations=p.free_operations,
                    trial_days=p.trial_days,
                    is_default=p.is_default,
                )
                for p in rows
            }

        self.model = Model(self.run(read_plans), self.settings)
        assert self.model.catalogue["pro"].units == pro_units
        for who, code in purchases:  # most runs start with plans held
            self._buy(who, code)

    # -- the actions. One rule draws which (weighted; only those that apply) and then its
    # arguments: Hypothesis's swarm testing would switch whole rules off for a run, and with
    # a dozen runs a charge-advance-refund sequence would be rare.

    @rule(data=st.data())
    def step(self, data):
        actions = [
            name
            for name, (weight, _) in ACTIONS.items()
            if APPLIES.get(name, lambda _: True)(self)
            for _ in range(weight)
        ]
        action = data.draw(st.sampled_from(actions), label="action")
        args = {name: data.draw(arg, label=name) for name, arg in ACTIONS[action][1].items()}
        if action == "finish":
            args["data"] = data
        STATS[f"action {action}"] += 1
        getattr(self, action)(**args)

    def charge(self, who, op_types):
        """A few requests of one user, one after another."""
        for op_type in op_types:
            self._charge(who, op_type)

    def _charge(self, who: int, op_type: str) -> None:
        user_id = self.users[who].id
        expected, actual, user = self.attempt(
            who,
            lambda u: self.model.charge(u, op_type, self.now),
            lambda s: operations.charge(
                s,
                self.settings,
                user_id=user_id,
                op_type=op_type,
                request_key=f"charge:{next(self.keys)}",
            ),
        )
        if actual is None:
            return
        holding = expected["holding"]
        event(f"charge from {actual.funding} ({actual.units} units)")
        for rolled in actual.rolled_over:
            event(f"charge rolled over first: {rolled.kind}")
        assert (actual.funding, actual.price, actual.units) == (
            expected["funding"],
            expected["price"],
            expected["units"],
        )
        assert [e.kind for e in actual.rolled_over] == expected["rolled"]
        assert actual.holding_id == (holding.id if holding else None)
        assert actual.units_after == (holding.units_left if holding else None)
        assert (actual.balance_after, actual.free_after) == (user.balance, user.free)
        user.ops[actual.operation_id] = MOperation(
            id=actual.operation_id,
            funding=expected["funding"],
            units=expected["units"],
            price=expected["price"],
            holding_id=actual.holding_id,
            period_no=expected["period_no"],
        )

    def _ops(self) -> list[tuple[int, int]]:
        return [(who, op_id) for who, user in enumerate(self.users) for op_id in user.ops]

    def finish(self, data, outcome):
        """An operation ends: its result delivered (post) or the job failed (refund) — any
        operation, so also a second refund, or a refund of a posted one (nothing back)."""
        queued = [(w, o) for w, o in self._ops() if self.users[w].ops[o].status == "queued"]
        which = data.draw(st.sampled_from(["oldest queued", "queued", "any"]), label="which")
        if queued and which == "oldest queued":  # likelier to be of a period now over
            who, op_id = min(queued, key=lambda wo: wo[1])
        else:
            pool = queued if queued and which == "queued" else self._ops()
            who, op_id = data.draw(st.sampled_from(pool), label="operation")
        if outcome == "post":
            posted = self.run(lambda s: operations.complete_operation(s, operation_id=op_id))
            op = self.users[who].ops[op_id]
            assert posted == (op.status == "queued")
            if posted:
                op.status = "succeeded"
                self.dirty = True
            return
        expected, actual, _ = self.attempt(
            who,
            lambda u: self.model.refund(u, u.ops[op_id], self.now),
            lambda s: operations.refund_operation(s, operation_id=op_id, error="failed"),
        )
        if expected is None or actual is None:
            assert expected is None and actual is None
            return
        got = {
            "amount": actual.amount,
            "free_back": actual.free_back,
            "units_back": actual.units_back,
            "not_carried": actual.not_carried,
        }
        assert got == expected
        event(f"refund of {actual.funding}: not carried {actual.not_carried}")

    def buy(self, who, code):
        self._buy(who, code)

    def _buy(self, who: int, code: str) -> None:
        key = f"buy:{next(self.keys)}"
        user_id = self.users[who].id

        def purchase(s: Any) -> Any:
            return plans.buy_plan_from_balance(
                s, self.settings, user_id=user_id, plan_code=code, request_key=key, now=self.now
            )

        expected, actual, user = self.attempt(
            who, lambda u: self.model.buy(u, code, self.now), purchase
        )
        if actual is None:
            return
        event(f"buy {code}: {actual.status}{' (trial)' if actual.trial else ''}")
        assert actual.status == expected["status"]
        assert actual.holding_id == expected["holding"].id
        assert (actual.balance_after, actual.free_after) == (user.balance, user.free)
        if actual.status == plans.BOUGHT:
            assert actual.trial == expected["trial"]

            def again(_: MUser) -> None:
                raise Refused(DuplicateRequest)

            self.attempt(who, again, purchase)  # the same update delivered again

    def money(self, who, how, amount, free_delta):
        """Money in through the one credit path (a payment, credited once; a plan's payment
        also buys the plan in the same transaction, or leaves the money on the balance), or
        an admin's adjustment of money and free operations (refused past zero)."""
        user_id = self.users[who].id
        if how.startswith("pay for "):
            self._pay_for_plan(who, how.removeprefix("pay for "))
            return
        if how == "top-up":
            amount = abs(amount)

            async def pay(session: Any) -> Any:
                payment = await payments.create_payment(
                    session, user_id=user_id, amount=amount, currency="RUB"
                )
                await session.flush()
                return payment.id

            payment_id = self.run(pay)

            def credit(session: Any) -> Any:
                return payments.credit_payment(
                    session, payment_id=payment_id, amount=amount, currency="RUB"
                )

            def topped_up(u: MUser) -> None:
                u.balance += amount

            _, credited, user = self.attempt(who, topped_up, credit)
            assert credited.balance_after == user.balance
            assert self.run(credit) is None  # the notification again: nothing
            return

        def adjusted(u: MUser) -> None:
            if u.balance + amount < 0 or u.free + free_delta < 0:
                raise Refused(InsufficientFunds)
            u.balance += amount
            u.free += free_delta

        self.attempt(
            who,
            adjusted,
            lambda s: accounts.adjust(
                s, user_id=user_id, amount=amount, free_delta=free_delta, reason="machine"
            ),
        )

    def _pay_for_plan(self, who: int, code: str) -> None:
        """A YooKassa payment of the plan's price, as billing.payments credits it: the
        credit and billing.plans.buy_after_payment in one transaction."""
        user_id, plan = self.users[who].id, self.model.catalogue[code]
        amount = plan.price or 1_000  # the default plan costs nothing: a payment of 10 ₽

        async def pay(session: Any) -> Any:
            payment = await payments.create_payment(
                session, user_id=user_id, amount=amount, currency="RUB"
            )
            await session.flush()
            return payment.id

        payment_id = self.run(pay)

        async def credit_and_buy(session: Any) -> Any:
            credited = await payments.credit_payment(
                session, payment_id=payment_id, amount=amount, currency="RUB", notice=False
            )
            assert credited is not None
            plan_id = await session.scalar(select(Plan.id).where(Plan.code == code))
            return await plans.buy_after_payment(
                session, user_id=user_id, plan_id=plan_id, payment_id=payment_id, amount=amount
            )

        def paid(u: MUser) -> dict[str, Any]:
            u.balance += amount
            kept = copy.deepcopy(u)
            try:
                return self.model.buy(u, code, self.now)
            except Refused:
                u.__dict__.update(kept.__dict__)  # not bought: the money stays
                return {"status": "not bought", "holding": None}

        expected, note, user = self.attempt(who, paid, credit_and_buy)
        kinds = {"bought": "plan_bought", "scheduled": "plan_scheduled"}
        kinds["already_active"] = "plan_scheduled"
        assert note.kind == kinds.get(expected["status"], "plan_not_bought")
        assert note.holding_id == (expected["holding"].id if expected["holding"] else None)
        assert note.balance_after == user.balance
        event(f"plan payment for {code}: {note.kind}")

    def advance(self, step):
        """Time passes (nothing rolls over by itself: on read, or by the pass)."""
        self.now += step

    def _something_due(self) -> bool:
        return any(
            self.model.due(u, self.now) or self.model.free_period(u, self.now) for u in self.users
        )

    def roll_over(self, by):
        """A roll-over on read of one user (/plans, /balance), or the scheduled pass: the due
        users, each in a transaction of its own."""
        if by == "pass":
            due = self.run(lambda s: plans.due_users(s, self.settings, now=self.now, limit=100))
            expected_due = [
                u.id
                for u in self.users
                if self.model.due(u, self.now) or self.model.free_period(u, self.now)
            ]
            assert sorted(due) == sorted(expected_due)
            whom = [i for i, u in enumerate(self.users) if u.id in due]
        else:
            whom = [by]
        for who in whom:
            user_id = self.users[who].id
            expected, actual, _ = self.attempt(
                who,
                lambda u: self.model.roll_over(u, self.now),
                lambda s, user_id=user_id: plans.roll_over(
                    s, self.settings, user_id=user_id, now=self.now
                ),
            )
            assert [e.kind for e in actual] == expected
            for kind in expected:
                event(f"roll-over: {kind}")

    def change_subscription(self, who, change):
        """Auto-renewal off / on, or the subscription to renew into (a change at renewal)."""
        user_id = self.users[who].id
        if change.startswith("renew"):
            on = change == "renew on"
            self.attempt(
                who,
                lambda u: self.model.set_auto_renew(u, on),
                lambda s: plans.set_auto_renew(s, user_id=user_id, on=on),
            )
            return
        code = change.removeprefix("next ")
        self.attempt(
            who,
            lambda u: self.model.choose_next(u, code),
            lambda s: plans.choose_next_plan(s, user_id=user_id, plan_code=code),
        )

    def operator(self, code, archive, price, units):
        """The operator edits a plan (holders get it from their next period) or takes it off
        sale (holders keep it; a subscription does not renew)."""
        if archive:
            self.run(lambda s: plans.archive_plan(s, code))
            self.model.catalogue[code].archived = True
        else:
            self.run(lambda s: plans.edit_plan(s, code, price=price, units=units))
            self.model.catalogue[code].price = price
            self.model.catalogue[code].units = units
        self.dirty = True

    # -- the invariant

    @invariant()
    def books_agree(self):
        if not self.users:
            return
        STATS["steps"] += 1

        # A step that wrote nothing (refused and rolled back; the clock moved) leaves the
        # books and the model as they were at the last check: only what is due changes.
        if not self.dirty:
            due = self.run(lambda s: plans.due_holdings(s, self.now, 100))
            want_due = sorted(h.id for u in self.users for h in self.model.due(u, self.now))
            assert sorted(d.holding_id for d in due) == want_due
            return
        self.dirty = False
        STATS["steps that wrote, checked"] += 1

        async def read(session: Any) -> tuple[Any, ...]:
            problems = await audit(session)
            users = (
                await session.execute(
                    select(User.id, User.balance, User.free_operations_left, User.free_renewed_at)
                    .where(User.id.in_([u.id for u in self.users]))
                    .order_by(User.id)
                )
            ).all()
            codes = dict((await session.execute(select(Plan.id, Plan.code))).all())
            holdings = (
                await session.scalars(select(UserPlan).order_by(UserPlan.user_id, UserPlan.id))
            ).all()
            ops = (
                await session.scalars(select(Operation).order_by(Operation.user_id, Operation.id))
            ).all()
            due = await plans.due_holdings(session, self.now, 100)
            return problems, users, codes, holdings, ops, due

        problems, users, codes, holdings, ops, due = self.run(read)
        assert problems == [], "ledger audit:\n" + "\n".join(problems)
        assert [
            (r.id, r.balance, r.free_operations_left, _aware(r.free_renewed_at)) for r in users
        ] == [(u.id, u.balance, u.free, u.free_renewed_at) for u in self.users]
        got_holdings = [
            (
                h.user_id,
                h.id,
                codes[h.plan_id],
                h.kind,
                h.status,
                h.units_left,
                h.period_no,
                _aware(h.ends_at),
                h.auto_renew,
                codes.get(h.next_plan_id),
                h.trial,
                h.end_reason,
            )
            for h in holdings
        ]
        want_holdings = [
            (
                u.id,
                h.id,
                h.plan,
                h.kind,
                h.status,
                h.units_left,
                h.period_no,
                h.ends_at,
                h.auto_renew,
                h.next_plan,
                h.trial,
                h.end_reason,
            )
            for u in self.users
            for h in sorted(u.holdings, key=lambda h: h.id)
        ]
        assert got_holdings == want_holdings
        got_ops = [
            (o.user_id, o.id, o.status, o.funding, o.units, o.price, o.holding_id, o.period_no)
            for o in ops
        ]
        want_ops = [
            (u.id, o.id, o.status, o.funding, o.units, o.price, o.holding_id, o.period_no)
            for u in self.users
            for o in sorted(u.ops.values(), key=lambda o: o.id)
        ]
        assert got_ops == want_ops
        want_due = sorted(h.id for u in self.users for h in self.model.due(u, self.now))
        assert sorted(d.holding_id for d in due) == want_due


# action: (weight, its arguments); APPLIES: when an action can do anything at all.
ACTIONS: dict[str, tuple[int, dict[str, st.SearchStrategy[Any]]]] = {
    "charge": (
        4,
        {"who": WHO, "op_types": st.lists(st.sampled_from(OP_TYPES), min_size=1, max_size=4)},
    ),
    "finish": (3, {"outcome": st.sampled_from(["refund", "refund", "post"])}),
    "advance": (2, {"step": st.sampled_from(STEPS)}),
    "roll_over": (1, {"by": st.sampled_from([0, 0, 1, "pass"])}),
    "buy": (2, {"who": WHO, "code": st.sampled_from(BUYABLE)}),
    "money": (
        1,
        {
            "who": WHO,
            "how": st.sampled_from(["top-up", "admin", *(f"pay for {c}" for c in BUYABLE)]),
            "amount": st.sampled_from([-3_000, -500, 700, 8_000, 19_900, 50_000]),
            "free_delta": st.sampled_from([0, 0, -1, 1]),
        },
    ),
    "change_subscription": (1, {"who": WHO, "change": st.sampled_from(SUBSCRIPTION_CHANGES)}),
    "operator": (
        1,
        {
            "code": st.sampled_from(["pro", "trial", "pack7"]),
            "archive": st.booleans(),
            "price": st.sampled_from([2_500, 19_900, 40_000]),
            "units": st.sampled_from([1, 3, 8]),
        },
    ),
}
APPLIES: dict[str, Callable[[PlansMachine], Any]] = {
    "finish": PlansMachine._ops,
    "roll_over": PlansMachine._something_due,
    "change_subscription": lambda m: any(m.model.subscription(u) for u in m.users),
}


# The slow tier (make test, CI) runs PLANS_MACHINE_EXAMPLES runs of each database and order
# (500 for a long exploration); the fast tier (make test-fast) one run of 40 steps each.
# PLANS_MACHINE_SHRINK=0: the first failing run as found, not shrunk (for mutation checks).
FULL_EXAMPLES = int(os.environ.get("PLANS_MACHINE_EXAMPLES", "12"))
FEW_EXAMPLES = 1
MACHINE_SETTINGS = dict(
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    **(
        {"phases": [Phase.explicit, Phase.reuse, Phase.generate]}
        if os.environ.get("PLANS_MACHINE_SHRINK") == "0"
        else {}
    ),
)


@pytest.mark.parametrize(
    "examples",
    [
        pytest.param(FEW_EXAMPLES, id="few"),
        pytest.param(FULL_EXAMPLES, id="full", marks=pytest.mark.slow),
    ],
)
@pytest.mark.parametrize("order", [DEFAULT_ORDER, SEED_003_ORDER], ids=["default", "seed003"])
def test_plans_state_machine(any_db_url, order, examples):
    STATS.clear()
    started = time.monotonic()
    loop = asyncio.new_event_loop()
    engine = make_engine(any_db_url, pool_size=2)
    try:
        run_state_machine_as_test(
            lambda: PlansMachine(any_db_url, order, loop, engine),
            settings=hsettings(max_examples=examples, **MACHINE_SETTINGS),
        )
    finally:
        loop.run_until_complete(engine.dispose())
        loop.close()
    print(f"\n{time.monotonic() - started:.1f} s")
    for label, n in sorted(STATS.items()):
        print(f"{n:6d}  {label}")
