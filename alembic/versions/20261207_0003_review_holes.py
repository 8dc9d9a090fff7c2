"""review holes: delivery time, a Redis key token per operation, an append-only ledger

- ``operations.delivered_at``: when the result reached the chat (written right after
  Telegram accepted it), so the audit can report an operation refunded AND delivered.
- ``operations.key_token``: a random token per operation. Every Redis key derived from an
  operation (its RQ job id, the lock, the "delivered" marker) carries it, so a database that
  starts again from id 1 beside a Redis that kept its keys never meets an old key. Existing
  rows get a random token of their own.
- triggers that refuse UPDATE and DELETE on ``ledger_entries`` (and TRUNCATE on PostgreSQL):
  the ledger is append-only in the database, not by convention.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEDGER_REFUSAL = "ledger_entries is append-only"

PG_TOKEN_DEFAULT = "replace(gen_random_uuid()::text, '-', '')"
SQLITE_TOKEN_DEFAULT = "(lower(hex(randomblob(16))))"

PG_LEDGER_FUNCTION = f"""
CREATE OR REPLACE FUNCTION ledger_entries_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '{LEDGER_REFUSAL}: % refused', TG_OP USING ERRCODE = 'restrict_violation';
END;
$$
"""
PG_LEDGER_TRIGGERS = (
    "CREATE TRIGGER ledger_entries_no_update_delete BEFORE UPDATE OR DELETE ON ledger_entries "
    "FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only()",
    "CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries "
    "FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_append_only()",
)
PG_LEDGER_DROP = (
    "DROP TRIGGER IF EXISTS ledger_entries_no_truncate ON ledger_entries",
    "DROP TRIGGER IF EXISTS ledger_entries_no_update_delete ON ledger_entries",
    "DROP FUNCTION IF EXISTS ledger_entries_append_only()",
)
SQLITE_LEDGER_TRIGGERS = (
    "CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries "
    f"BEGIN SELECT RAISE(ABORT, '{LEDGER_REFUSAL}: UPDATE refused'); END",
    "CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries "
    f"BEGIN SELECT RAISE(ABORT, '{LEDGER_REFUSAL}: DELETE refused'); END",
)
SQLITE_LEDGER_DROP = (
    "DROP TRIGGER IF EXISTS ledger_entries_no_update",
    "DROP TRIGGER IF EXISTS ledger_entries_no_delete",
)


def ledger_trigger_sql(dialect: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(create, drop) statements of the append-only triggers, for a dialect."""
    if dialect == "postgresql":
        return (PG_LEDGER_FUNCTION, *PG_LEDGER_TRIGGERS), PG_LEDGER_DROP
    return SQLITE_LEDGER_TRIGGERS, SQLITE_LEDGER_DROP


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    token_default = PG_TOKEN_DEFAULT if dialect == "postgresql" else SQLITE_TOKEN_DEFAULT
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column(
                "key_token",
                sa.String(length=32),
                server_default=sa.text(token_default),
                nullable=False,
            )
        )
    create, _ = ledger_trigger_sql(dialect)
    for statement in create:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    _, drop = ledger_trigger_sql(dialect)
    for statement in drop:
        op.execute(statement)
    with op.batch_alter_table("operations") as batch:
        batch.drop_column("key_token")
        batch.drop_column("delivered_at")
