"""stars plan payments: the plan a payment buys, on its row

- ``payments.plan_id``: the plan a Telegram Stars payment buys once credited (billing.stars);
  NULL for a top-up. A YooKassa plan payment names its plan in the provider's metadata; a
  Stars invoice has only its payload, so the row it names carries the plan.

The downgrade drops the column (refused while Stars plan payments exist: a pending one would
turn into a top-up that buys nothing).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("plan_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_payments_plan_id_plans"), "plans", ["plan_id"], ["id"])


def downgrade() -> None:
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT count(*) FROM payments WHERE plan_id IS NOT NULL")).scalar():
        raise RuntimeError("payments that buy a plan exist: not dropping payments.plan_id")
    with op.batch_alter_table("payments") as batch:
        batch.drop_constraint(op.f("fk_payments_plan_id_plans"), type_="foreignkey")
        batch.drop_column("plan_id")
