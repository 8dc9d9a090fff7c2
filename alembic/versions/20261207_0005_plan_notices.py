"""plan notices: the users' plan messages go through the payment-notice outbox

The messages about plans (a plan paid through YooKassa is active, a subscription renewed or
changed, ended, a package expired) are rows of ``payment_notices``, written in the
transaction of the change and sent after the commit, or by a worker's maintenance pass:

- ``payment_id`` becomes nullable (a renewal, an end, an expiry has no payment);
- + ``plan_id`` (FK plans) and ``holding_id`` (FK user_plans): what the text names;
- the kinds: + plan_bought, plan_scheduled, plan_not_bought, plan_renewed, plan_changed,
  plan_ended, package_expired.

The downgrade deletes the plan messages (rows with a plan kind): messages only, no money.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

OLD_KINDS = "kind IN ('credited', 'canceled', 'refunded')"
PLAN_KINDS = (
    "'plan_bought', 'plan_scheduled', 'plan_not_bought', 'plan_renewed', 'plan_changed', "
    "'plan_ended', 'package_expired'"
)
NEW_KINDS = f"kind IN ('credited', 'canceled', 'refunded', {PLAN_KINDS})"


def upgrade() -> None:
    with op.batch_alter_table("payment_notices") as batch:
        batch.alter_column("payment_id", existing_type=BigId, nullable=True)
        batch.add_column(sa.Column("plan_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("holding_id", BigId, nullable=True))
        batch.create_foreign_key(
            op.f("fk_payment_notices_plan_id_plans"), "plans", ["plan_id"], ["id"]
        )
        batch.create_foreign_key(
            op.f("fk_payment_notices_holding_id_user_plans"), "user_plans", ["holding_id"], ["id"]
        )
        batch.drop_constraint(op.f("ck_payment_notices_kind_valid"), type_="check")
        batch.create_check_constraint(op.f("ck_payment_notices_kind_valid"), NEW_KINDS)


def downgrade() -> None:
    op.execute(f"DELETE FROM payment_notices WHERE kind IN ({PLAN_KINDS})")
    with op.batch_alter_table("payment_notices") as batch:
        batch.drop_constraint(op.f("ck_payment_notices_kind_valid"), type_="check")
        batch.create_check_constraint(op.f("ck_payment_notices_kind_valid"), OLD_KINDS)
        batch.drop_constraint(op.f("fk_payment_notices_holding_id_user_plans"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_payment_notices_plan_id_plans"), type_="foreignkey")
        batch.drop_column("holding_id")
        batch.drop_column("plan_id")
        batch.alter_column("payment_id", existing_type=BigId, nullable=False)
