"""low-balance alert settings, one per organisation

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "low_balance_settings",
        sa.Column("org_id", sa.Text(), primary_key=True),
        sa.Column("threshold_micros", sa.BigInteger(), nullable=False),
        # NULL: alert the addresses of the organisation's monthly budget
        sa.Column("alert_emails", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("threshold_micros > 0", name="ck_low_balance_settings_threshold_positive"),
    )


def downgrade() -> None:
    op.drop_table("low_balance_settings")
