"""payment safety net: the check schedule of open payments, operator refund requests

- ``payments.checks`` and ``payments.next_check_at``: a worker's pass asks the YooKassa API
  about payments whose notification never came, backing off per payment up to its expiry
  (billing.payment_checks); an index on (status, next_check_at) for its lookup. Existing
  rows start never asked (checks 0, NULL): an open one is asked once it is due.
- ``payment_refunds``: a refund an operator asks for, with its idempotence key stored before
  the API call (billing.refunds); at most one unfinished request per payment.

The downgrade drops both (no money is held in either: the debits are ledger entries).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UNFINISHED = "status IN ('new', 'pending')"


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("checks", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_check_constraint(op.f("ck_payments_checks_non_negative"), "checks >= 0")
    op.create_index(
        "ix_payments_status_next_check_at", "payments", ["status", "next_check_at"], unique=False
    )
    op.create_table(
        "payment_refunds",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("payment_id", BigId, nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("idempotence_key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("yookassa_refund_id", sa.String(length=64), nullable=True),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("receipt_email", sa.String(length=254), nullable=True),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payment_refunds_amount_positive")),
        sa.CheckConstraint(
            "status IN ('new', 'pending', 'succeeded', 'canceled', 'rejected')",
            name=op.f("ck_payment_refunds_status_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_payment_refunds_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_refunds")),
        sa.UniqueConstraint("idempotence_key", name=op.f("uq_payment_refunds_idempotence_key")),
        sa.UniqueConstraint(
            "yookassa_refund_id", name=op.f("uq_payment_refunds_yookassa_refund_id")
        ),
    )
    op.create_index(
        op.f("ix_payment_refunds_payment_id"), "payment_refunds", ["payment_id"], unique=False
    )
    op.create_index(
        "ix_payment_refunds_one_unfinished",
        "payment_refunds",
        ["payment_id"],
        unique=True,
        postgresql_where=sa.text(UNFINISHED),
        sqlite_where=sa.text(UNFINISHED),
    )


def downgrade() -> None:
    op.drop_index("ix_payment_refunds_one_unfinished", table_name="payment_refunds")
    op.drop_index(op.f("ix_payment_refunds_payment_id"), table_name="payment_refunds")
    op.drop_table("payment_refunds")
    op.drop_index("ix_payments_status_next_check_at", table_name="payments")
    with op.batch_alter_table("payments") as batch:
        batch.drop_constraint(op.f("ck_payments_checks_non_negative"), type_="check")
        batch.drop_column("next_check_at")
        batch.drop_column("checks")
