"""model catalog

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("base_url", sa.Text(), nullable=False),
        sa.Column("upstream_model", sa.String(200), nullable=False),
        sa.Column("api_key_encrypted", sa.Text(), nullable=True),
        sa.Column("extra_config", postgresql.JSONB(), nullable=False, server_default="{}"),
        sa.Column("price_in_micros", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("price_out_micros", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("group_id", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("multiple", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("max_tokens_default", sa.Integer(), nullable=False, server_default="4096"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "uq_models_name_live",
        "models",
        ["name"],
        unique=True,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_models_name_live", table_name="models")
    op.drop_table("models")
