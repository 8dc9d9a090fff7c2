"""Named domain errors, turned into user text at the edges (bot, web)."""

from __future__ import annotations


class BillingError(Exception):
    """Base of every billing error. After one, the caller rolls its transaction back."""


class InvalidAmount(BillingError):
    def __init__(self, amount: object, message: str = "amount must be a positive integer"):
        super().__init__(f"{message}: {amount!r}")
        self.amount = amount


class AmountOutOfRange(InvalidAmount):
    """An amount past its bound: an operator's limit, or what the balance column can hold."""

    def __init__(self, amount: object, limit: int, message: str = "amount out of range"):
        super().__init__(amount, f"{message} (limit {limit})")
        self.limit = limit


class UnknownOperationType(BillingError):
    def __init__(self, op_type: object):
        super().__init__(f"unknown operation type: {op_type!r}")
        self.op_type = op_type


class UserNotFound(BillingError):
    def __init__(self, user_id: int):
        super().__init__(f"no user {user_id}")
        self.user_id = user_id


class InsufficientFunds(BillingError):
    """No source covers the operation: no free operation, no quota or package with enough
    units, and the balance is short of ``price`` (the discounted price)."""

    def __init__(self, *, price: int, balance: int, free_left: int, free_granted: int = 0):
        super().__init__(f"price {price} > balance {balance}, free operations left {free_left}")
        self.price = price
        self.balance = balance
        self.free_left = free_left
        self.free_granted = free_granted


class OperationLocked(BillingError):
    """No plan the user holds (nor the default plan) unlocks this operation type. Nothing
    was charged or written."""

    def __init__(self, op_type: str):
        super().__init__(f"operation type {op_type!r} is not unlocked by the user's plans")
        self.op_type = op_type


class ChargeConflict(BillingError):
    """A charge lost the race for its source on every try (the counter it chose was spent by
    concurrent charges each time). Nothing was written; the caller may try again."""

    def __init__(self, user_id: int, tries: int):
        super().__init__(f"user {user_id}: the charge found no source to hold after {tries} tries")
        self.user_id = user_id
        self.tries = tries


class DuplicateRequest(BillingError):
    """The Telegram update that asked for this operation was already charged."""

    def __init__(self, request_key: str, operation_id: int | None = None):
        super().__init__(f"request {request_key} already charged (operation {operation_id})")
        self.request_key = request_key
        self.operation_id = operation_id


class OperationNotFound(BillingError):
    def __init__(self, operation_id: int):
        super().__init__(f"no operation {operation_id}")
        self.operation_id = operation_id


class OperationNotRefundable(BillingError):
    """A succeeded operation is never voided."""

    def __init__(self, operation_id: int, status: str):
        super().__init__(f"operation {operation_id} is {status}: it cannot be refunded")
        self.operation_id = operation_id
        self.status = status


class OperationDelivered(OperationNotRefundable):
    """Its result reached the chat (``delivered_at`` is set): it is posted, never voided."""

    def __init__(self, operation_id: int):
        super().__init__(operation_id, "delivered")


class PaymentNotFound(BillingError):
    def __init__(self, ref: object):
        super().__init__(f"no payment {ref!r}")
        self.ref = ref


class PaymentMismatch(BillingError):
    """What YooKassa says does not match our payment row."""

    def __init__(self, payment_id: int, field: str, expected: object, got: object):
        super().__init__(f"payment {payment_id}: {field} expected {expected!r}, got {got!r}")
        self.payment_id = payment_id
        self.field = field
        self.expected = expected
        self.got = got


class PaymentNotCreditable(BillingError):
    """The payment is in a final state that is not a credit (canceled, failed)."""

    def __init__(self, payment_id: int, status: str):
        super().__init__(f"payment {payment_id} is {status}: it cannot be credited")
        self.payment_id = payment_id
        self.status = status
