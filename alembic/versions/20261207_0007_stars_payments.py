"""stars payments: Telegram Stars top-ups in the payments table

- ``payments.provider``: 'yookassa' (every existing row) or 'stars'.
- ``payments.stars``: a Stars payment's price in ⭐ (what the invoice asks); ``amount`` stays
  what it credits, in kopecks.
- ``payments.telegram_charge_id``: Telegram's ``telegram_payment_charge_id``, unique: a
  charge credits one row once (an old invoice paid again has a new charge id and a row of
  its own).

The downgrade drops the columns (refused while Stars rows exist: their charges would lose
the key that keeps them credited once).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(
            sa.Column("provider", sa.String(length=16), server_default="yookassa", nullable=False)
        )
        batch.add_column(sa.Column("stars", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("telegram_charge_id", sa.String(length=128), nullable=True))
        batch.create_check_constraint(
            op.f("ck_payments_provider_valid"), "provider IN ('yookassa', 'stars')"
        )
        batch.create_check_constraint(
            op.f("ck_payments_stars_positive"), "stars IS NULL OR stars > 0"
        )
        batch.create_unique_constraint(
            op.f("uq_payments_telegram_charge_id"), ["telegram_charge_id"]
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT count(*) FROM payments WHERE provider = 'stars'")).scalar():
        raise RuntimeError("payments paid in Telegram Stars exist: not dropping their columns")
    with op.batch_alter_table("payments") as batch:
        batch.drop_constraint(op.f("uq_payments_telegram_charge_id"), type_="unique")
        batch.drop_constraint(op.f("ck_payments_stars_positive"), type_="check")
        batch.drop_constraint(op.f("ck_payments_provider_valid"), type_="check")
        batch.drop_column("telegram_charge_id")
        batch.drop_column("stars")
        batch.drop_column("provider")
