"""The schema. Money is integer kopecks everywhere; rubles only on screen."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    false,
    func,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments INTEGER PRIMARY KEY, so big ids are BIGINT on PostgreSQL only.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


NOW = text("CURRENT_TIMESTAMP")


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_key_token() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class OperationStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # failed with nothing to give back (a free-of-charge type)
    REFUNDED = "refunded"  # failed and its charge voided


class Funding(enum.StrEnum):
    """The source a charge spent from (``operations.funding``): exactly one per operation."""

    FREE = "free"  # one of the user's free operations
    BALANCE = "balance"  # money from the balance
    NONE = "none"  # a type that costs nothing (add_text)
    SUBSCRIPTION = "subscription"  # units of the subscription's quota for this period
    PACKAGE = "package"  # units of a package


class PlanKind(enum.StrEnum):
    SUBSCRIPTION = "subscription"  # units per period, renewed from the balance
    PACKAGE = "package"  # units once, with an optional expiry


class Period(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


class HoldingStatus(enum.StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


class EndReason(enum.StrEnum):
    CANCELED = "canceled"  # auto-renewal off and the period is over
    NO_MONEY = "no_money"  # the balance did not cover the renewal
    ARCHIVED = "archived"  # the plan was archived: it does not renew
    EXPIRED = "expired"  # a package past its expiry
    REPLACED = "replaced"  # another subscription took its place


class PaymentStatus(enum.StrEnum):
    PENDING = "pending"
    WAITING_FOR_CAPTURE = "waiting_for_capture"
    SUCCEEDED = "succeeded"
    CANCELED = "canceled"
    REFUNDED = "refunded"
    FAILED = "failed"  # never reached YooKassa (down or misconfigured)


class PaymentProvider(enum.StrEnum):
    YOOKASSA = "yookassa"  # a redirect to YooKassa's checkout
    STARS = "stars"  # a Telegram Stars invoice (currency XTR)


class NoticeKind(enum.StrEnum):
    CREDITED = "credited"  # a payment credited to the balance
    CANCELED = "canceled"  # a payment canceled before any money came in
    REFUNDED = "refunded"  # money returned to the card (one notice per YooKassa refund)
    # Plans (billing.plans): the message of a plan paid through YooKassa replaces
    # "credited" under the same key ("credited:<payment id>"); the others name no payment.
    PLAN_BOUGHT = "plan_bought"  # a plan paid through YooKassa is active
    PLAN_SCHEDULED = "plan_scheduled"  # paid; the subscription starts at the renewal
    PLAN_NOT_BOUGHT = "plan_not_bought"  # paid, but not for sale now: the money is on balance
    PLAN_RENEWED = "plan_renewed"  # a subscription's new period, paid from the balance
    PLAN_CHANGED = "plan_changed"  # at the renewal, the subscription chosen mid-period began
    PLAN_ENDED = "plan_ended"  # a subscription ended (canceled, no_money, archived)
    PACKAGE_EXPIRED = "package_expired"  # a package past its expiry


class NoticeOutcome(enum.StrEnum):
    SENT = "sent"
    BLOCKED = "blocked"  # 403: the user blocked the bot; never retried
    REFUSED = "refused"  # another permanent refusal (400 chat not found, ...)
    GAVE_UP = "gave_up"  # transient failures past the attempt limit


class LedgerKind(enum.StrEnum):
    SIGNUP = "signup"  # the free operations a new user starts with
    CHARGE = "charge"  # an operation paid (money or a free operation)
    REFUND = "refund"  # an operation's charge voided
    TOPUP = "topup"  # a YooKassa payment credited
    PAYMENT_REFUND = "payment_refund"  # money returned to the card through YooKassa
    ADJUSTMENT = "adjustment"  # an admin's grant or debit, with a reason
    PLAN_PURCHASE = "plan_purchase"  # a plan bought: its price, its units, its free operations
    RENEWAL = "renewal"  # a subscription's new period ("renewal:<holding>:<period_no>")
    PLAN_END = "plan_end"  # a holding ended or expired: its units gone ("plan_end:<holding>")
    FREE_RENEWAL = "free_renewal"  # free operations topped up ("free_renewal:<user>:<n>")


# Entries that are recorded even when they move no counter: a trial's purchase, a renewal or
# end of a holding with nothing to move, a refund into a period that has rolled over.
ALWAYS_RECORDED = (
    LedgerKind.PLAN_PURCHASE,
    LedgerKind.RENEWAL,
    LedgerKind.PLAN_END,
    LedgerKind.REFUND,
)


def _enum_check(column: str, values: Iterable[enum.StrEnum]) -> str:
    listed = ", ".join(f"'{v.value}'" for v in values)
    return f"{column} IN ({listed})"


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("free_operations_left >= 0", name="free_operations_non_negative"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    username: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(16))
    email: Mapped[str | None] = mapped_column(String(254))
    # Negative only through a YooKassa refund of money already spent: the debt is on record.
    balance: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    free_operations_left: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    free_operations_granted: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(server_default=NOW, onupdate=func.now())
    # When FREE_OPERATIONS_RENEW_DAYS last topped the free operations up (NULL: never).
    free_renewed_at: Mapped[datetime | None] = mapped_column()
    # "Confirm before a charge": NULL follows the operator's CONFIRM_CHARGES_DEFAULT.
    confirm_charges: Mapped[bool | None] = mapped_column(Boolean)
    # The once-a-day plans offer after a result was last shown.
    offer_shown_at: Mapped[datetime | None] = mapped_column()


class Plan(Base):
    """The catalogue of plans: a subscription (units per period) or a package (units once).

    Operators edit and archive rows; holders keep what they bought (a holding copies the
    price, the period and the units at purchase and at each renewal)."""

    __tablename__ = "plans"
    __table_args__ = (
        CheckConstraint(_enum_check("kind", PlanKind), name="kind_valid"),
        CheckConstraint(f"period IS NULL OR {_enum_check('period', Period)}", name="period_valid"),
        CheckConstraint(
            "(kind = 'subscription') = (period IS NOT NULL)", name="period_iff_subscription"
        ),
        CheckConstraint("price >= 0", name="price_non_negative"),
        CheckConstraint("units >= 0", name="units_non_negative"),
        CheckConstraint(
            "expires_days IS NULL OR (kind = 'package' AND expires_days >= 1)",
            name="expires_days_of_package",
        ),
        CheckConstraint(
            "discount_percent >= 0 AND discount_percent <= 100", name="discount_percent_range"
        ),
        CheckConstraint("free_operations >= 0", name="free_operations_non_negative"),
        CheckConstraint(
            "trial_days = 0 OR (kind = 'subscription' AND trial_days > 0)",
            name="trial_days_of_subscription",
        ),
        CheckConstraint("NOT is_default OR archived_at IS NULL", name="default_not_archived"),
        # At most one default plan.
        Index(
            "ix_plans_one_default",
            "is_default",
            unique=True,
            postgresql_where=text("is_default"),
            sqlite_where=text("is_default"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)  # the slug: free, pro, pack10
    kind: Mapped[str] = mapped_column(String(16))
    name_ru: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(64))
    price: Mapped[int] = mapped_column(BigInteger)  # kopecks per period / for the package
    period: Mapped[str | None] = mapped_column(String(8))  # subscriptions only
    units: Mapped[int] = mapped_column(Integer)  # per period / in total for a package
    expires_days: Mapped[int | None] = mapped_column(Integer)  # a package's life; NULL: never
    discount_percent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Operation types it unlocks; NULL: every type. SQL NULL, never JSON null.
    unlocks: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    free_operations: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    trial_days: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    sort_order: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    archived_at: Mapped[datetime | None] = mapped_column()  # NULL: on sale
    created_at: Mapped[datetime] = mapped_column(server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(server_default=NOW, onupdate=func.now())


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("refunded_amount >= 0", name="refunded_non_negative"),
        CheckConstraint(_enum_check("status", PaymentStatus), name="status_valid"),
        CheckConstraint("checks >= 0", name="checks_non_negative"),
        CheckConstraint(_enum_check("provider", PaymentProvider), name="provider_valid"),
        CheckConstraint("stars IS NULL OR stars > 0", name="stars_positive"),
        # The safety net's lookup: open payments by when they are asked about next.
        Index("ix_payments_status_next_check_at", "status", "next_check_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    yookassa_payment_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    idempotence_key: Mapped[str] = mapped_column(String(64), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(24), default=PaymentStatus.PENDING)
    description: Mapped[str | None] = mapped_column(String(128))
    confirmation_url: Mapped[str | None] = mapped_column(Text)
    cancellation_reason: Mapped[str | None] = mapped_column(String(64))
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(server_default=NOW, onupdate=func.now())
    credited_at: Mapped[datetime | None] = mapped_column()
    # The safety net for lost notifications (billing.payment_checks): how many times a
    # worker's pass asked the API about this payment, and when it asks next. NULL with
    # checks = 0: never asked (due once it is PAYMENT_RECHECK_AFTER_SECONDS old); NULL with
    # checks > 0: the last check was made past the payment's expiry, none follows.
    checks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_check_at: Mapped[datetime | None] = mapped_column()
    # Telegram Stars (migration 0007): the provider, the invoice's price in ⭐ (``amount`` is
    # what it credits, in kopecks) and Telegram's charge id, unique: one charge, one credit.
    provider: Mapped[str] = mapped_column(
        String(16), default=PaymentProvider.YOOKASSA, server_default="yookassa"
    )
    stars: Mapped[int | None] = mapped_column(BigInteger)
    telegram_charge_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    # The plan a payment buys once credited (migration 0009; NULL: a top-up). A Stars
    # credit reads it here; a YooKassa credit reads the plan from YooKassa's metadata (the
    # row's plan_id is for the books and reports).
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))


class RefundStatus(enum.StrEnum):
    """An operator's refund request (``payment_refunds``)."""

    NEW = "new"  # stored before the API call; its outcome is not known yet
    PENDING = "pending"  # YooKassa has it and has not finished it
    SUCCEEDED = "succeeded"  # returned to the card, and debited from the balance
    CANCELED = "canceled"  # YooKassa made it and then canceled it: nothing returned
    REJECTED = "rejected"  # YooKassa refused to make it (a 4xx): nothing returned


UNFINISHED_REFUNDS = (RefundStatus.NEW.value, RefundStatus.PENDING.value)


class PaymentRefund(Base):
    """A refund an operator asked for (``python -m billing refund-payment``, /refund).

    Written and committed with its own idempotence key BEFORE YooKassa is asked, so a
    retry (a timeout, a crash, the command run again) sends the same key and YooKassa makes
    one refund. The money itself moves only through the ledger (the debit
    "payment_refund:<YooKassa refund id>", the same as for a refund YooKassa notifies of);
    a request is marked succeeded only once that debit is on record. At most one
    unfinished request per payment."""

    __tablename__ = "payment_refunds"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(_enum_check("status", RefundStatus), name="status_valid"),
        Index(
            "ix_payment_refunds_one_unfinished",
            "payment_id",
            unique=True,
            postgresql_where=text("status IN ('new', 'pending')"),
            sqlite_where=text("status IN ('new', 'pending')"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)  # kopecks
    idempotence_key: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=RefundStatus.NEW)
    yookassa_refund_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    requested_by: Mapped[str] = mapped_column(String(64))  # "cli", "admin:<telegram id>"
    # The receipt's e-mail sent with the first call, so every retry sends the same body.
    receipt_email: Mapped[str | None] = mapped_column(String(254))
    error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(server_default=NOW, onupdate=func.now())


class Operation(Base):
    __tablename__ = "operations"
    __table_args__ = (
        CheckConstraint("price >= 0", name="price_non_negative"),
        CheckConstraint(_enum_check("status", OperationStatus), name="status_valid"),
        CheckConstraint(_enum_check("funding", Funding), name="funding_valid"),
        CheckConstraint("units >= 0", name="units_non_negative"),
        # A quota or package charge names the holding it took from; nothing else does.
        CheckConstraint(
            "(funding IN ('subscription', 'package')) = (holding_id IS NOT NULL)",
            name="holding_iff_plan_funded",
        ),
        CheckConstraint(
            "period_no IS NULL OR funding = 'subscription'", name="period_no_of_subscription"
        ),
        Index("ix_operations_status_deadline", "status", "deadline_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    price: Mapped[int] = mapped_column(BigInteger)
    funding: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=OperationStatus.QUEUED)
    # The Telegram update that asked for it ("chat:message"): a re-delivery charges nothing.
    request_key: Mapped[str | None] = mapped_column(String(96), unique=True)
    job_id: Mapped[str | None] = mapped_column(String(64))
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    status_message_id: Mapped[int | None] = mapped_column(BigInteger)
    input_ref: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    result_ref: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    deadline_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(server_default=NOW, onupdate=func.now())
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    # When the result reached the chat (right after Telegram accepted it).
    delivered_at: Mapped[datetime | None] = mapped_column()
    # Random per operation; every Redis key derived from the operation carries it, so a
    # database that reuses ids beside an old Redis never meets an old key. The database
    # fills it in (a random default per dialect, migration 0003) for raw INSERTs too.
    key_token: Mapped[str] = mapped_column(String(32), default=new_key_token)
    # The holding a quota or package charge took from (NULL for free / balance / none).
    holding_id: Mapped[int | None] = mapped_column(ForeignKey("user_plans.id"))
    # The units the operation cost (catalogue + OPERATION_UNITS), whatever the source.
    units: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The subscription period it was charged in (a refund gives back only in that period).
    period_no: Mapped[int | None] = mapped_column(Integer)
    # An AI operation: the provider's request id (fal's queue), and what the model's webhook
    # or the status poll said, written once (billing.model_calls).
    model_request_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    model_result: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint(_enum_check("kind", LedgerKind), name="kind_valid"),
        CheckConstraint(
            "amount <> 0 OR free_delta <> 0 OR units_delta <> 0 OR "
            + _enum_check("kind", ALWAYS_RECORDED),
            name="changes_something",
        ),
        # Units move only on a named holding, and such an entry says the counter after it.
        CheckConstraint("units_delta = 0 OR holding_id IS NOT NULL", name="units_of_holding"),
        CheckConstraint(
            "(holding_id IS NULL) = (units_after IS NULL)", name="holding_has_units_after"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    amount: Mapped[int] = mapped_column(BigInteger, default=0)  # signed kopecks
    free_delta: Mapped[int] = mapped_column(Integer, default=0)  # signed free operations
    balance_after: Mapped[int] = mapped_column(BigInteger)
    free_after: Mapped[int] = mapped_column(Integer)
    operation_id: Mapped[int | None] = mapped_column(ForeignKey("operations.id"), index=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=NOW)
    units_delta: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # signed
    units_after: Mapped[int | None] = mapped_column(Integer)  # the holding's units_left after
    holding_id: Mapped[int | None] = mapped_column(ForeignKey("user_plans.id"), index=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))


class UserPlan(Base):
    """A holding: a plan a user holds (a subscription or a package), with its own counter.

    ``units_left`` moves only with a ledger entry naming the holding (``units_delta``), by a
    conditional UPDATE, in the same transaction. Copies what the user bought (price, period,
    units per period) so an edit of the plan applies from the holder's next period."""

    __tablename__ = "user_plans"
    __table_args__ = (
        CheckConstraint(_enum_check("kind", PlanKind), name="kind_valid"),
        CheckConstraint(_enum_check("status", HoldingStatus), name="status_valid"),
        CheckConstraint(
            f"end_reason IS NULL OR {_enum_check('end_reason', EndReason)}",
            name="end_reason_valid",
        ),
        CheckConstraint(f"period IS NULL OR {_enum_check('period', Period)}", name="period_valid"),
        CheckConstraint(
            "(kind = 'subscription') = (period IS NOT NULL)", name="period_iff_subscription"
        ),
        CheckConstraint("units_left >= 0", name="units_left_non_negative"),
        CheckConstraint("units_per_period >= 0", name="units_per_period_non_negative"),
        CheckConstraint("price >= 0", name="price_non_negative"),
        CheckConstraint("period_no >= 1", name="period_no_positive"),
        CheckConstraint(
            "(status = 'ended') = (ended_at IS NOT NULL AND end_reason IS NOT NULL)",
            name="ended_has_reason",
        ),
        # One active subscription per user (packages: any number).
        Index(
            "ix_user_plans_one_active_subscription",
            "user_id",
            unique=True,
            postgresql_where=text("kind = 'subscription' AND status = 'active'"),
            sqlite_where=text("kind = 'subscription' AND status = 'active'"),
        ),
        # The charge's lookup: the user's active holdings.
        Index("ix_user_plans_user_id_status", "user_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    kind: Mapped[str] = mapped_column(String(16))  # copied from the plan
    status: Mapped[str] = mapped_column(String(8), default=HoldingStatus.ACTIVE)
    units_left: Mapped[int] = mapped_column(Integer)
    units_per_period: Mapped[int] = mapped_column(Integer)
    price: Mapped[int] = mapped_column(BigInteger)  # kopecks one period (the package) cost
    period: Mapped[str | None] = mapped_column(String(8))
    period_no: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    period_start: Mapped[datetime] = mapped_column()
    # The current period's end (subscription) or the expiry (package; NULL: never).
    ends_at: Mapped[datetime | None] = mapped_column()
    auto_renew: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # A subscription change chosen mid-period, applied at the renewal.
    next_plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))
    trial: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    ended_at: Mapped[datetime | None] = mapped_column()
    end_reason: Mapped[str | None] = mapped_column(String(16))
    # The YooKassa payment that bought it (NULL: bought from the balance).
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    created_at: Mapped[datetime] = mapped_column(server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(server_default=NOW, onupdate=func.now())


class PaymentNotice(Base):
    """The outbox of the user's payment messages: one row per message that must be sent.

    Written by the billing service in the same transaction as the change it tells about (the
    credit, the cancel, a refund), so a message can be lost only together with the money
    change. The web server sends it right after the commit and marks it done; a worker's
    maintenance pass sends what is still not done after PAYMENT_NOTICE_GRACE_SECONDS. Holds
    no money: nothing here is ever read back into a balance.
    """

    __tablename__ = "payment_notices"
    __table_args__ = (
        CheckConstraint(_enum_check("kind", NoticeKind), name="kind_valid"),
        CheckConstraint(
            f"outcome IS NULL OR {_enum_check('outcome', NoticeOutcome)}", name="outcome_valid"
        ),
        CheckConstraint("(done_at IS NULL) = (outcome IS NULL)", name="done_has_outcome"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        Index("ix_payment_notices_due", "done_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # "credited:<payment id>", "canceled:<payment id>", "refunded:<YooKassa refund id>";
    # plans: "plan_renewed:<holding>:<period_no>", "plan_ended:<holding>", ...
    key: Mapped[str] = mapped_column(String(128), unique=True)
    # NULL for a plan's message that no payment caused (a renewal, an end, an expiry).
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(16))
    # What the text says, as of the change: kopecks, the balance right after it, the reason.
    amount: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(server_default=NOW)
    # Set by a maintenance pass that is sending it; NULL again after a transient failure.
    claimed_at: Mapped[datetime | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    done_at: Mapped[datetime | None] = mapped_column()
    outcome: Mapped[str | None] = mapped_column(String(16))
    last_error: Mapped[str | None] = mapped_column(Text)
    # The plan and the holding a plan's message is about (its name, its period's end).
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))
    holding_id: Mapped[int | None] = mapped_column(ForeignKey("user_plans.id"))


class Backend(enum.StrEnum):
    FAL = "fal"  # a hosted model on fal.ai (model_id names it)
    LOCAL = "local"  # the project's own code (imaging/), the offline fallback


class OperationModel(Base):
    """The model catalogue: per operation type, what runs it and what it costs.

    Operators change it (``python -m billing models``, /model_set); the defaults are
    ``billing.ai_models.DEFAULTS``, seeded by the migration. Provider keys never live here:
    they come from the settings (FAL_KEY)."""

    __tablename__ = "operation_models"
    __table_args__ = (
        CheckConstraint(_enum_check("backend", Backend), name="backend_valid"),
        # A fal backend names its model; a local one may keep the fal model for going back.
        CheckConstraint("backend = 'local' OR model_id IS NOT NULL", name="model_of_fal"),
        CheckConstraint("units IS NULL OR units >= 0", name="units_non_negative"),
    )

    type: Mapped[str] = mapped_column(String(32), primary_key=True)
    backend: Mapped[str] = mapped_column(String(16))
    model_id: Mapped[str | None] = mapped_column(String(200))
    # The model's own parameters, sent as they are (a JSON object).
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The price in units (one unit is PRICE_PER_OPERATION); NULL: the default price of
    # billing.prices (the PRICES line, or OPERATION_UNITS).
    units: Mapped[int | None] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    updated_at: Mapped[datetime] = mapped_column(server_default=NOW, onupdate=func.now())
