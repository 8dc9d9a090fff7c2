"""The schema. Money is integer kopecks everywhere; rubles only on screen."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    func,
    text,
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
    FREE = "free"  # one of the user's free operations
    BALANCE = "balance"  # money from the balance
    NONE = "none"  # a type that costs nothing (add_text)


class PaymentStatus(enum.StrEnum):
    PENDING = "pending"
    WAITING_FOR_CAPTURE = "waiting_for_capture"
    SUCCEEDED = "succeeded"
    CANCELED = "canceled"
    REFUNDED = "refunded"
    FAILED = "failed"  # never reached YooKassa (down or misconfigured)


class NoticeKind(enum.StrEnum):
    CREDITED = "credited"  # a payment credited to the balance
    CANCELED = "canceled"  # a payment canceled before any money came in
    REFUNDED = "refunded"  # money returned to the card (one notice per YooKassa refund)


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


def _enum_check(column: str, values: type[enum.StrEnum]) -> str:
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


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("refunded_amount >= 0", name="refunded_non_negative"),
        CheckConstraint(_enum_check("status", PaymentStatus), name="status_valid"),
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


class Operation(Base):
    __tablename__ = "operations"
    __table_args__ = (
        CheckConstraint("price >= 0", name="price_non_negative"),
        CheckConstraint(_enum_check("status", OperationStatus), name="status_valid"),
        CheckConstraint(_enum_check("funding", Funding), name="funding_valid"),
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


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint(_enum_check("kind", LedgerKind), name="kind_valid"),
        CheckConstraint("amount <> 0 OR free_delta <> 0", name="changes_something"),
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
    # "credited:<payment id>", "canceled:<payment id>", "refunded:<YooKassa refund id>".
    key: Mapped[str] = mapped_column(String(128), unique=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
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
