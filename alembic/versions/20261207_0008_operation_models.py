"""operation models: the model catalogue (issue 15)

- ``operation_models``: per operation type, the backend (``fal`` with a model id, or
  ``local``), the model's parameters (JSON), the price in units (NULL: the default price of
  ``billing.prices``: its PRICES line or OPERATION_UNITS) and whether it is offered.

Seeded with the defaults (``billing.ai_models.DEFAULTS``, copied here so that this revision
means the same whatever the code becomes; a test compares the two). Provider keys are not
stored: they come from the settings.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# type, backend, model id, params (units NULL: the default price; every row enabled)
SEED = (
    ("generate", "fal", "fal-ai/flux/schnell", {"image_size": "square_hd"}),
    ("edit", "fal", "fal-ai/flux-pro/kontext", {}),
    ("merge", "fal", "fal-ai/flux-pro/kontext/max/multi", {}),
    ("face_swap", "fal", "fal-ai/face-swap", {}),
    ("retouch", "fal", "fal-ai/codeformer", {"fidelity": 0.7}),
    ("upscale", "fal", "fal-ai/esrgan", {"scale": 2}),
    ("add_text", "local", None, {}),
)


def upgrade() -> None:
    table = op.create_table(
        "operation_models",
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("backend", sa.String(length=16), nullable=False),
        sa.Column("model_id", sa.String(length=200), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "backend IN ('fal', 'local')", name=op.f("ck_operation_models_backend_valid")
        ),
        sa.CheckConstraint(
            "backend = 'local' OR model_id IS NOT NULL",
            name=op.f("ck_operation_models_model_of_fal"),
        ),
        sa.CheckConstraint(
            "units IS NULL OR units >= 0", name=op.f("ck_operation_models_units_non_negative")
        ),
        sa.PrimaryKeyConstraint("type", name=op.f("pk_operation_models")),
    )
    op.bulk_insert(
        table,
        [
            {
                "type": kind,
                "backend": backend,
                "model_id": model,
                "params": params,
                "units": None,
                "enabled": True,
            }
            for kind, backend, model, params in SEED
        ],
    )


def downgrade() -> None:
    op.drop_table("operation_models")
