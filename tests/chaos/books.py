"""The judge of every chaos scenario: the ledger audit, and every operation and payment in a
final state that the chat and YooKassa explain.

``check_books(scene, users)`` raises AssertionError with every problem found and returns a
summary (counts per outcome) for the scenario to print and assert on.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from billing.audit import audit
from billing.models import (
    Funding,
    LedgerEntry,
    LedgerKind,
    Operation,
    OperationStatus,
    Payment,
    PaymentStatus,
    User,
)
from sandbox.telegram_client import Message
from tests.chaos.stack import ACTIVE, ChaosUser, Scene

# Texts that tell a user their operation's charge was voided.
REFUND_NOTICES = (
    "❌ Не получилось",  # the worker / the sweeper (workers/refunds.void_and_notify)
    "Очередь сейчас недоступна",  # the bot: the enqueue failed (bot/billed.py)
    "операция не запущена. Списание отменено",  # the bot: its handler failed
)
# A credited payment is announced once: by the web server (the notification credited it) or
# by the bot ("Проверить оплату" credited it).
CREDITED = ("Баланс пополнен", "Оплата получена")
# A canceled one by the web server when the notification canceled it, and by the bot when
# the user checks it (so once or twice, never zero times).
CANCELED_BY_WEB = "не прошла"
CANCELED_BY_BOT = "отменён, деньги не списаны"


def is_refund_notice(message: Message) -> bool:
    return any(text in message.text for text in REFUND_NOTICES)


def is_result(message: Message) -> bool:
    return bool(message.photo) and "увеличено" in message.text


@dataclass
class Books:
    """What the scenario ended with."""

    operations: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)  # why operations were voided
    payments: Counter[str] = field(default_factory=Counter)
    double_deliveries: list[int] = field(default_factory=list)
    delivered_and_refunded: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"operations {dict(self.operations)} (voided: {dict(self.reasons)}); "
            f"payments {dict(self.payments)}; "
            f"delivered twice {len(self.double_deliveries)}; "
            f"delivered and refunded {len(self.delivered_and_refunded)}"
        )


async def check_books(
    scene: Scene,
    users: list[ChaosUser],
    *,
    explained: set[int] | None = None,
    strict_delivery: bool = False,
) -> Books:
    """Everything final and explained, or AssertionError listing every problem.

    ``explained``: operations whose work-horse was SIGKILLed while it ran (a kill between
    sending the result and committing it delivers a result the operation cannot keep: the
    retry sends it again, or the refund gives the money back too). Those may show a second
    result or a result next to a refund; any other operation may not. With
    ``strict_delivery`` not even they may."""
    explained = explained or set()
    books = Books()
    problems = books.problems
    async with scene.sessionmaker() as session:
        problems += [f"audit: {p}" for p in await audit(session)]
        ops = list((await session.scalars(select(Operation).order_by(Operation.id))).all())
        entries = {
            (op_id, kind): n
            for op_id, kind, n in (
                await session.execute(
                    select(LedgerEntry.operation_id, LedgerEntry.kind, func.count())
                    .where(LedgerEntry.operation_id.is_not(None))
                    .group_by(LedgerEntry.operation_id, LedgerEntry.kind)
                )
            ).all()
        }
        payments = list((await session.scalars(select(Payment).order_by(Payment.id))).all())
        telegram_ids = dict((await session.execute(select(User.id, User.telegram_id))).all())

    by_chat: dict[int, list[Operation]] = {}
    for op in ops:
        books.operations[op.status] += 1
        if op.error:
            books.reasons[op.error.split(":")[0]] += 1
        by_chat.setdefault(op.chat_id or 0, []).append(op)
        if op.status in ACTIVE:
            problems.append(f"operation {op.id} left {op.status}")
            continue
        charges = entries.get((op.id, LedgerKind.CHARGE.value), 0)
        refunds = entries.get((op.id, LedgerKind.REFUND.value), 0)
        if charges != (0 if op.funding == Funding.NONE else 1):
            problems.append(f"operation {op.id} ({op.funding}): {charges} charges")
        if op.status == OperationStatus.REFUNDED and refunds != 1:
            problems.append(f"operation {op.id} refunded with {refunds} refund entries")
        if op.status != OperationStatus.REFUNDED and refunds:
            problems.append(f"operation {op.id} {op.status} has {refunds} refund entries")
        if op.status in (OperationStatus.REFUNDED, OperationStatus.FAILED) and not op.error:
            problems.append(f"operation {op.id} {op.status} without a recorded reason")

    user_by_chat = {u.chat_id: u for u in users}
    for chat_id, chat_ops in by_chat.items():
        user = user_by_chat.get(chat_id)
        if user is None:
            problems.append(f"operations {[o.id for o in chat_ops]} in an unknown chat {chat_id}")
            continue
        messages = await user.tg.bot_messages(include_deleted=True)
        problems += _check_chat(user, chat_ops, messages, explained, strict_delivery, books)

    yk_payments: dict[str, dict[str, Any]] = {p["id"]: p for p in await scene.yk.payments()}
    credited_per_user: Counter[int] = Counter()
    canceled_per_user: Counter[int] = Counter()
    for payment in payments:
        books.payments[payment.status] += 1
        remote = yk_payments.get(payment.yookassa_payment_id or "")
        remote_status = remote["status"] if remote else None
        if payment.status == PaymentStatus.SUCCEEDED:
            credited_per_user[payment.user_id] += 1
            if payment.credited_at is None:
                problems.append(f"payment {payment.id} succeeded but never credited")
            if remote_status != "succeeded":
                problems.append(f"payment {payment.id} credited, YooKassa says {remote_status}")
        elif payment.status == PaymentStatus.CANCELED:
            canceled_per_user[payment.user_id] += 1
            if remote_status != "canceled":
                problems.append(f"payment {payment.id} canceled, YooKassa says {remote_status}")
        elif payment.status == PaymentStatus.FAILED:
            if remote_status not in (None, "pending"):
                problems.append(f"payment {payment.id} failed here, YooKassa says {remote_status}")
        elif payment.status in (PaymentStatus.PENDING, PaymentStatus.WAITING_FOR_CAPTURE):
            if remote_status in ("succeeded", "canceled"):
                problems.append(
                    f"payment {payment.id} still {payment.status}, YooKassa says {remote_status}"
                )
    for user in users:
        account_id = next((k for k, v in telegram_ids.items() if v == user.tg.user_id), None)
        if account_id is None:
            continue
        messages = await user.tg.bot_messages(include_deleted=True)
        credited = sum(any(c in m.text for c in CREDITED) for m in messages)
        if credited != credited_per_user[account_id]:
            problems.append(
                f"user {user.tg.user_id}: {credited} top-up messages for "
                f"{credited_per_user[account_id]} credited payments"
            )
        by_web = sum(CANCELED_BY_WEB in m.text for m in messages)
        by_bot = sum(CANCELED_BY_BOT in m.text for m in messages)
        expected = canceled_per_user[account_id]
        if by_web > expected or by_web + by_bot < expected:
            problems.append(
                f"user {user.tg.user_id}: {by_web} + {by_bot} cancel messages for "
                f"{expected} canceled payments"
            )
    if problems:
        raise AssertionError(
            "the books do not close:\n  "
            + "\n  ".join(problems)
            + f"\n{books.line()}\n"
            + scene.logs(20)
        )
    return books


def _check_chat(
    user: ChaosUser,
    ops: list[Operation],
    messages: list[Message],
    explained: set[int],
    strict: bool,
    books: Books,
) -> list[str]:
    """Every succeeded operation's result is in the chat; every result in the chat is some
    succeeded operation's (a spare one is a second delivery, or a delivery next to a
    refund); as many refund notices as voided operations."""
    problems: list[str] = []
    by_id = {m.message_id: m for m in messages}
    refund_notices_total = sum(is_refund_notice(m) for m in messages)
    voided = sum(op.status in (OperationStatus.REFUNDED, OperationStatus.FAILED) for op in ops)
    if refund_notices_total != voided:
        problems.append(
            f"chat {user.chat_id}: {refund_notices_total} refund notices for {voided} voided "
            "operations"
        )
    referenced: set[int] = set()
    for op in ops:
        if op.status != OperationStatus.SUCCEEDED:
            continue
        ref = op.result_ref or {}
        delivered = by_id.get(ref.get("photo_message_id") or -1)
        if delivered is None or not delivered.photo:
            problems.append(
                f"operation {op.id} succeeded, its result is not in chat {user.chat_id}: "
                f"result_ref {ref}"
            )
        else:
            referenced.add(delivered.message_id)
    # A spare result belongs to the operation asked for last before it: users send their
    # next photo once the previous operation is final (a late one can only be misnamed, not
    # missed — the count of spare results is what is judged).
    starts = sorted((int((op.request_key or "0:0").split(":")[1]), op) for op in ops)
    for message in messages:
        if not is_result(message) or message.message_id in referenced:
            continue
        owner = next((op for start, op in reversed(starts) if start < message.message_id), None)
        if owner is None:
            problems.append(f"chat {user.chat_id}: result {message.message_id} of no request")
            continue
        excused = owner.id in explained and not strict
        if owner.status == OperationStatus.SUCCEEDED:
            books.double_deliveries.append(owner.id)
            what = "delivered twice"
        else:
            books.delivered_and_refunded.append(owner.id)
            what = f"{owner.status} but a result was delivered"
        if not excused:
            problems.append(f"operation {owner.id} {what} (message {message.message_id})")
    return problems


def explained_by_kills(scene: Scene) -> set[int]:
    return {op_id for kill in scene.kills for op_id in kill.operation_ids}
