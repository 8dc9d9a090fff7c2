"""plans: the catalogue, the holdings, and the sources of a charge (issue 14)

- ``plans``: the catalogue (subscriptions and packages), seeded with the default ``free``
  plan, one example subscription ``pro`` and one example package ``pack10``.
- ``user_plans``: the holdings (a plan a user holds, with its own units counter); one active
  subscription per user; indexed by (user_id, status) for the charge's lookup.
- ``operations``: + holding_id, units, period_no; ``funding`` gains subscription / package.
- ``ledger_entries``: + units_delta, units_after, holding_id, plan_id; new kinds
  plan_purchase, renewal, plan_end, free_renewal; "changes something" counts units and
  records the kinds that may move nothing.
- ``users``: + free_renewed_at, confirm_charges, offer_shown_at.

Existing users need nothing: a user with no holding is on the default plan, with the same
balance and free operations.

SQLite changes a CHECK constraint by rebuilding the table (batch mode). Dropping a table
drops its triggers, so the ledger's append-only triggers (migration 0003) are dropped before
and created again after; and the rebuild of a table other tables refer to needs foreign-key
enforcement off (alembic/env.py turns it off for SQLite migrations and checks the keys
before the commit).

The downgrade refuses a database whose ledger has plan entries or whose operations were paid
from a plan (the old CHECK constraints reject them): such books cannot go back.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 12:00:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NOW = sa.text("CURRENT_TIMESTAMP")

# The seeded catalogue (tests/conftest.py puts these rows back after cleaning the tables).
SEED_PLANS: tuple[dict[str, object], ...] = (
    {
        "code": "free",
        "kind": "subscription",
        "name_ru": "Бесплатный",
        "name_en": "Free",
        "price": 0,
        "period": "month",
        "units": 0,
        "expires_days": None,
        "discount_percent": 0,
        "free_operations": 0,
        "trial_days": 0,
        "is_default": True,
        "sort_order": 0,
    },
    {
        "code": "pro",
        "kind": "subscription",
        "name_ru": "Про",
        "name_en": "Pro",
        "price": 19900,
        "period": "month",
        "units": 30,
        "expires_days": None,
        "discount_percent": 10,
        "free_operations": 0,
        "trial_days": 0,
        "is_default": False,
        "sort_order": 10,
    },
    {
        "code": "pack10",
        "kind": "package",
        "name_ru": "Пакет 10 операций",
        "name_en": "Pack of 10 operations",
        "price": 8000,
        "period": None,
        "units": 10,
        "expires_days": 90,
        "discount_percent": 0,
        "free_operations": 0,
        "trial_days": 0,
        "is_default": False,
        "sort_order": 20,
    },
)

OLD_FUNDING = "funding IN ('free', 'balance', 'none')"
NEW_FUNDING = "funding IN ('free', 'balance', 'none', 'subscription', 'package')"
OLD_KINDS = "kind IN ('signup', 'charge', 'refund', 'topup', 'payment_refund', 'adjustment')"
NEW_KINDS = (
    "kind IN ('signup', 'charge', 'refund', 'topup', 'payment_refund', 'adjustment', "
    "'plan_purchase', 'renewal', 'plan_end', 'free_renewal')"
)
OLD_CHANGES = "amount <> 0 OR free_delta <> 0"
NEW_CHANGES = (
    "amount <> 0 OR free_delta <> 0 OR units_delta <> 0 OR "
    "kind IN ('plan_purchase', 'renewal', 'plan_end', 'refund')"
)
ACTIVE_SUBSCRIPTION = "kind = 'subscription' AND status = 'active'"


def _ledger_trigger_sql(dialect: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Migration 0003's append-only triggers (create, drop), as that migration defines them."""
    path = Path(__file__).with_name("20261207_0003_review_holes.py")
    spec = importlib.util.spec_from_file_location("_migration_0003_triggers", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ledger_trigger_sql(dialect)


def plans_table() -> sa.Table:
    """The columns the seed writes (unlocks stays SQL NULL: every type)."""
    return sa.table(
        "plans",
        *(
            sa.column(name, type_)
            for name, type_ in (
                ("code", sa.String()),
                ("kind", sa.String()),
                ("name_ru", sa.String()),
                ("name_en", sa.String()),
                ("price", sa.BigInteger()),
                ("period", sa.String()),
                ("units", sa.Integer()),
                ("expires_days", sa.Integer()),
                ("discount_percent", sa.Integer()),
                ("free_operations", sa.Integer()),
                ("trial_days", sa.Integer()),
                ("is_default", sa.Boolean()),
                ("sort_order", sa.Integer()),
            )
        ),
    )


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
    ]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name

    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("free_renewed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("confirm_charges", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("offer_shown_at", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name_ru", sa.String(length=64), nullable=False),
        sa.Column("name_en", sa.String(length=64), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=True),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("expires_days", sa.Integer(), nullable=True),
        sa.Column("discount_percent", sa.Integer(), server_default="0", nullable=False),
        sa.Column("unlocks", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("free_operations", sa.Integer(), server_default="0", nullable=False),
        sa.Column("trial_days", sa.Integer(), server_default="0", nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("sort_order", sa.Integer(), server_default="0", nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.CheckConstraint(
            "kind IN ('subscription', 'package')", name=op.f("ck_plans_kind_valid")
        ),
        sa.CheckConstraint(
            "period IS NULL OR period IN ('day', 'week', 'month', 'year')",
            name=op.f("ck_plans_period_valid"),
        ),
        sa.CheckConstraint(
            "(kind = 'subscription') = (period IS NOT NULL)",
            name=op.f("ck_plans_period_iff_subscription"),
        ),
        sa.CheckConstraint("price >= 0", name=op.f("ck_plans_price_non_negative")),
        sa.CheckConstraint("units >= 0", name=op.f("ck_plans_units_non_negative")),
        sa.CheckConstraint(
            "expires_days IS NULL OR (kind = 'package' AND expires_days >= 1)",
            name=op.f("ck_plans_expires_days_of_package"),
        ),
        sa.CheckConstraint(
            "discount_percent >= 0 AND discount_percent <= 100",
            name=op.f("ck_plans_discount_percent_range"),
        ),
        sa.CheckConstraint(
            "free_operations >= 0", name=op.f("ck_plans_free_operations_non_negative")
        ),
        sa.CheckConstraint(
            "trial_days = 0 OR (kind = 'subscription' AND trial_days > 0)",
            name=op.f("ck_plans_trial_days_of_subscription"),
        ),
        sa.CheckConstraint(
            "NOT is_default OR archived_at IS NULL", name=op.f("ck_plans_default_not_archived")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
        sa.UniqueConstraint("code", name=op.f("uq_plans_code")),
    )
    op.create_index(
        "ix_plans_one_default",
        "plans",
        ["is_default"],
        unique=True,
        postgresql_where=sa.text("is_default"),
        sqlite_where=sa.text("is_default"),
    )
    op.bulk_insert(plans_table(), [dict(row) for row in SEED_PLANS])

    op.create_table(
        "user_plans",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("units_left", sa.Integer(), nullable=False),
        sa.Column("units_per_period", sa.Integer(), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=True),
        sa.Column("period_no", sa.Integer(), server_default="1", nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("auto_renew", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("next_plan_id", sa.Integer(), nullable=True),
        sa.Column("trial", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=16), nullable=True),
        sa.Column("payment_id", BigId, nullable=True),
        *_timestamps(),
        sa.CheckConstraint(
            "kind IN ('subscription', 'package')", name=op.f("ck_user_plans_kind_valid")
        ),
        sa.CheckConstraint(
            "status IN ('active', 'ended')", name=op.f("ck_user_plans_status_valid")
        ),
        sa.CheckConstraint(
            "end_reason IS NULL OR end_reason IN "
            "('canceled', 'no_money', 'archived', 'expired', 'replaced')",
            name=op.f("ck_user_plans_end_reason_valid"),
        ),
        sa.CheckConstraint(
            "period IS NULL OR period IN ('day', 'week', 'month', 'year')",
            name=op.f("ck_user_plans_period_valid"),
        ),
        sa.CheckConstraint(
            "(kind = 'subscription') = (period IS NOT NULL)",
            name=op.f("ck_user_plans_period_iff_subscription"),
        ),
        sa.CheckConstraint("units_left >= 0", name=op.f("ck_user_plans_units_left_non_negative")),
        sa.CheckConstraint(
            "units_per_period >= 0", name=op.f("ck_user_plans_units_per_period_non_negative")
        ),
        sa.CheckConstraint("price >= 0", name=op.f("ck_user_plans_price_non_negative")),
        sa.CheckConstraint("period_no >= 1", name=op.f("ck_user_plans_period_no_positive")),
        sa.CheckConstraint(
            "(status = 'ended') = (ended_at IS NOT NULL AND end_reason IS NOT NULL)",
            name=op.f("ck_user_plans_ended_has_reason"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_plans_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name=op.f("fk_user_plans_plan_id_plans")
        ),
        sa.ForeignKeyConstraint(
            ["next_plan_id"], ["plans.id"], name=op.f("fk_user_plans_next_plan_id_plans")
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_user_plans_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_plans")),
    )
    op.create_index(
        "ix_user_plans_one_active_subscription",
        "user_plans",
        ["user_id"],
        unique=True,
        postgresql_where=sa.text(ACTIVE_SUBSCRIPTION),
        sqlite_where=sa.text(ACTIVE_SUBSCRIPTION),
    )
    op.create_index("ix_user_plans_user_id_status", "user_plans", ["user_id", "status"])

    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("holding_id", BigId, nullable=True))
        batch.add_column(sa.Column("units", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("period_no", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_operations_holding_id_user_plans"), "user_plans", ["holding_id"], ["id"]
        )
        batch.drop_constraint(op.f("ck_operations_funding_valid"), type_="check")
        batch.create_check_constraint(op.f("ck_operations_funding_valid"), NEW_FUNDING)
        batch.create_check_constraint(op.f("ck_operations_units_non_negative"), "units >= 0")
        batch.create_check_constraint(
            op.f("ck_operations_holding_iff_plan_funded"),
            "(funding IN ('subscription', 'package')) = (holding_id IS NOT NULL)",
        )
        batch.create_check_constraint(
            op.f("ck_operations_period_no_of_subscription"),
            "period_no IS NULL OR funding = 'subscription'",
        )

    # A SQLite rebuild drops the ledger's triggers with the old table: drop them first
    # (explicitly, on both dialects, so the statement list stays one) and create them again.
    create_triggers, drop_triggers = _ledger_trigger_sql(dialect)
    if dialect == "sqlite":
        for statement in drop_triggers:
            op.execute(statement)
    with op.batch_alter_table("ledger_entries") as batch:
        batch.add_column(
            sa.Column("units_delta", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("units_after", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("holding_id", BigId, nullable=True))
        batch.add_column(sa.Column("plan_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_ledger_entries_holding_id_user_plans"), "user_plans", ["holding_id"], ["id"]
        )
        batch.create_foreign_key(
            op.f("fk_ledger_entries_plan_id_plans"), "plans", ["plan_id"], ["id"]
        )
        batch.create_index(op.f("ix_ledger_entries_holding_id"), ["holding_id"])
        batch.drop_constraint(op.f("ck_ledger_entries_kind_valid"), type_="check")
        batch.create_check_constraint(op.f("ck_ledger_entries_kind_valid"), NEW_KINDS)
        batch.drop_constraint(op.f("ck_ledger_entries_changes_something"), type_="check")
        batch.create_check_constraint(op.f("ck_ledger_entries_changes_something"), NEW_CHANGES)
        batch.create_check_constraint(
            op.f("ck_ledger_entries_units_of_holding"),
            "units_delta = 0 OR holding_id IS NOT NULL",
        )
        batch.create_check_constraint(
            op.f("ck_ledger_entries_holding_has_units_after"),
            "(holding_id IS NULL) = (units_after IS NULL)",
        )
    if dialect == "sqlite":
        for statement in create_triggers:
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    create_triggers, drop_triggers = _ledger_trigger_sql(dialect)
    if dialect == "sqlite":
        for statement in drop_triggers:
            op.execute(statement)
    with op.batch_alter_table("ledger_entries") as batch:
        batch.drop_constraint(op.f("ck_ledger_entries_holding_has_units_after"), type_="check")
        batch.drop_constraint(op.f("ck_ledger_entries_units_of_holding"), type_="check")
        batch.drop_constraint(op.f("ck_ledger_entries_changes_something"), type_="check")
        batch.create_check_constraint(op.f("ck_ledger_entries_changes_something"), OLD_CHANGES)
        batch.drop_constraint(op.f("ck_ledger_entries_kind_valid"), type_="check")
        batch.create_check_constraint(op.f("ck_ledger_entries_kind_valid"), OLD_KINDS)
        batch.drop_index(op.f("ix_ledger_entries_holding_id"))
        batch.drop_constraint(op.f("fk_ledger_entries_plan_id_plans"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_ledger_entries_holding_id_user_plans"), type_="foreignkey")
        batch.drop_column("plan_id")
        batch.drop_column("holding_id")
        batch.drop_column("units_after")
        batch.drop_column("units_delta")
    if dialect == "sqlite":
        for statement in create_triggers:
            op.execute(statement)

    with op.batch_alter_table("operations") as batch:
        batch.drop_constraint(op.f("ck_operations_period_no_of_subscription"), type_="check")
        batch.drop_constraint(op.f("ck_operations_holding_iff_plan_funded"), type_="check")
        batch.drop_constraint(op.f("ck_operations_units_non_negative"), type_="check")
        batch.drop_constraint(op.f("ck_operations_funding_valid"), type_="check")
        batch.create_check_constraint(op.f("ck_operations_funding_valid"), OLD_FUNDING)
        batch.drop_constraint(op.f("fk_operations_holding_id_user_plans"), type_="foreignkey")
        batch.drop_column("period_no")
        batch.drop_column("units")
        batch.drop_column("holding_id")

    op.drop_index("ix_user_plans_user_id_status", table_name="user_plans")
    op.drop_index("ix_user_plans_one_active_subscription", table_name="user_plans")
    op.drop_table("user_plans")
    op.drop_index("ix_plans_one_default", table_name="plans")
    op.drop_table("plans")

    with op.batch_alter_table("users") as batch:
        batch.drop_column("offer_shown_at")
        batch.drop_column("confirm_charges")
        batch.drop_column("free_renewed_at")
