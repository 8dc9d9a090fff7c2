"""An operation as a job sees it once claimed: what to run, for whom, where to answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from billing import operations as billing_operations
from billing.errors import OperationNotFound
from billing.prices import OperationType, operation_type
from texts.i18n import pick_language


@dataclass(frozen=True)
class Claimed:
    id: int
    user_id: int
    telegram_id: int
    op_type: OperationType
    price: int
    funding: str
    chat_id: int
    status_message_id: int | None
    file_ids: list[str]
    text: str | None
    language: str
    test_hook: str | None
    attempts: int
    key_token: str  # names the operation's Redis keys (jobqueue.queue.key_name)
    balance: int  # the user's, right after the claim: for the caption's "what is left"
    free_left: int
    units: int = 0  # what the operation cost in units
    units_left: int | None = None  # left in the quota / package it was paid from
    # What runs it, as the bot showed the user at the charge (``billing.ai_models``): the
    # input_ref's "model" ({"backend", "model_id", "params"}); None: queued before the
    # catalogue (local, but generate, which has no local code).
    model: dict[str, Any] | None = None


def _language(input_ref: dict[str, Any] | None, user_language: str | None) -> str:
    language = (input_ref or {}).get("language") or user_language
    return pick_language(language if isinstance(language, str) else None)


def claimed(row: Any) -> Claimed:
    """A :class:`Claimed` from a row of ``billing_operations.CLAIMED_COLUMNS``."""
    ref = dict(row.input_ref or {})
    file_ids = [str(f) for f in ref.get("file_ids") or []]
    text = ref.get("text")
    hook = ref.get("test_hook")
    return Claimed(
        id=row.id,
        user_id=row.user_id,
        telegram_id=row.telegram_id,
        op_type=operation_type(row.type),
        price=row.price,
        funding=row.funding,
        chat_id=row.chat_id if row.chat_id is not None else row.telegram_id,
        status_message_id=row.status_message_id,
        file_ids=file_ids,
        text=text if isinstance(text, str) else None,
        language=_language(ref, row.language),
        test_hook=str(hook) if hook is not None else None,
        attempts=row.attempts,
        key_token=row.key_token,
        balance=row.balance,
        free_left=row.free_operations_left,
        units=row.units,
        units_left=row.units_left,
        model=ref["model"] if isinstance(ref.get("model"), dict) else None,
    )


async def load(session: AsyncSession, operation_id: int) -> Claimed:
    row = await billing_operations.claimed_operation(session, operation_id=operation_id)
    if row is None:
        raise OperationNotFound(operation_id)
    return claimed(row)
