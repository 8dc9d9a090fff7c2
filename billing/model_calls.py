"""An AI operation's call of a hosted model: its request id and its outcome, each written once.

The job that submits the call records the provider's request id (and moves the deadline to
the model's); the webhook, or the status poll when the webhook is lost, records what the
model said — one conditional ``UPDATE ... WHERE model_result IS NULL`` each, so fal's
re-deliveries and a poll racing the webhook record it once. No money moves here: the hold is
posted by the delivery, voided by a failure or the sweeper (billing.operations). The caller
commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing.models import Operation, OperationStatus, utcnow
from billing.operations import ACTIVE


@dataclass(frozen=True, slots=True)
class Recorded:
    """The operation a model's outcome belongs to. ``first``: this call recorded it;
    ``waiting``: the operation still waits for its delivery (no outcome of its own yet)."""

    operation_id: int
    key_token: str
    first: bool
    waiting: bool


@dataclass(frozen=True, slots=True)
class ModelState:
    operation_id: int
    key_token: str
    type: str
    status: str
    request_id: str | None
    result: dict[str, Any] | None
    deadline_at: datetime | None
    # The model its charge recorded (input_ref["model"]: backend, model_id, params), if any.
    model: dict[str, Any] | None = None

    @property
    def active(self) -> bool:
        return self.status in {s.value for s in ACTIVE}


async def record_request(
    session: AsyncSession,
    *,
    operation_id: int,
    key_token: str,
    request_id: str,
    deadline_seconds: float,
) -> bool:
    """The submitted request's id on the running operation, its deadline the model's. False
    if the operation has an outcome already (or another request): the caller cancels."""
    row = await session.execute(
        update(Operation)
        .where(
            Operation.id == operation_id,
            Operation.key_token == key_token,
            Operation.status == OperationStatus.RUNNING.value,
            Operation.model_request_id.is_(None),
        )
        .values(
            model_request_id=request_id,
            deadline_at=utcnow() + timedelta(seconds=deadline_seconds),
        )
        .returning(Operation.id)
    )
    return row.scalar_one_or_none() is not None


async def record_result(
    session: AsyncSession, *, request_id: str, result: dict[str, Any]
) -> Recorded | None:
    """Record a request's outcome once (the first call for a request of an operation still
    waiting writes it; every later one changes nothing). None if no operation has this
    request (yet: the job may not have committed its id)."""
    for _ in range(2):
        written = await session.execute(
            update(Operation)
            .where(
                Operation.model_request_id == request_id,
                Operation.model_result.is_(None),
                Operation.status.in_([s.value for s in ACTIVE]),
            )
            .values(model_result=result)
            .returning(Operation.id, Operation.key_token)
        )
        row = written.one_or_none()
        if row is not None:
            return Recorded(row.id, row.key_token, first=True, waiting=True)
        state = await session.execute(
            select(
                Operation.id, Operation.key_token, Operation.status, Operation.model_result
            ).where(Operation.model_request_id == request_id)
        )
        seen = state.one_or_none()
        if seen is None:
            return None
        active = seen.status in {s.value for s in ACTIVE}
        if active and seen.model_result is None:
            # The submit's record committed between the UPDATE and this read (a model that
            # answers at once): the UPDATE did not see the id yet. Again, now that it does;
            # answered "already recorded", this webhook would have been lost.
            continue
        return Recorded(seen.id, seen.key_token, first=False, waiting=active)
    return None


async def model_state(session: AsyncSession, *, operation_id: int) -> ModelState | None:
    row = (
        await session.execute(
            select(
                Operation.id,
                Operation.key_token,
                Operation.type,
                Operation.status,
                Operation.model_request_id,
                Operation.model_result,
                Operation.deadline_at,
                Operation.input_ref,
            ).where(Operation.id == operation_id)
        )
    ).one_or_none()
    if row is None:
        return None
    *columns, input_ref = row
    model = (input_ref or {}).get("model") if isinstance(input_ref, dict) else None
    return ModelState(*columns, model=model if isinstance(model, dict) else None)
