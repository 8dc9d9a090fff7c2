"""model requests: an AI operation's call of a hosted model, and its outcome

- ``operations.model_request_id``: the provider's request id (fal's queue), written by the
  job that submitted it; unique, so a webhook names one operation.
- ``operations.model_result``: what the model's webhook (or the status poll) said — written
  once, by a conditional update (``model_result IS NULL``): fal re-delivers a webhook up to
  ~10 times, and only the first one records and enqueues the delivery.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("model_request_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("model_result", sa.JSON(), nullable=True))
        batch.create_unique_constraint(
            op.f("uq_operations_model_request_id"), ["model_request_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.drop_constraint(op.f("uq_operations_model_request_id"), type_="unique")
        batch.drop_column("model_result")
        batch.drop_column("model_request_id")
