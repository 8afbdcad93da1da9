"""budgets, key quotas and spend counters per period

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "budgets",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("limit_micros", sa.BigInteger(), nullable=False),
        sa.Column("alert_threshold_pct", sa.Integer(), nullable=True),
        sa.Column(
            "alert_emails", postgresql.ARRAY(sa.Text()), nullable=False, server_default=sa.text("'{}'")
        ),
        sa.Column("hard_limit", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("org_id", "key_id", "period", name="uq_budgets_org_id_key_id_period"),
        sa.CheckConstraint("period IN ('daily', 'monthly')", name="ck_budgets_period"),
        sa.CheckConstraint("limit_micros > 0", name="ck_budgets_limit_positive"),
        sa.CheckConstraint(
            "alert_threshold_pct IS NULL OR alert_threshold_pct BETWEEN 1 AND 100",
            name="ck_budgets_alert_threshold_pct",
        ),
    )
    op.create_table(
        "budget_versions",
        sa.Column("org_id", sa.Text(), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "spend_counters",
        sa.Column("org_id", sa.Text(), primary_key=True),
        sa.Column("period", sa.Text(), primary_key=True),
        sa.Column("key_id", sa.BigInteger(), primary_key=True),
        sa.Column("spent_micros", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "cost_daily",
        sa.Column("org_id", sa.Text(), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("category", sa.Text(), primary_key=True),
        sa.Column("cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "category IN ('inference', 'training', 'storage', 'network')", name="ck_cost_daily_category"
        ),
    )
    op.create_table(
        "key_quotas",
        sa.Column("key_id", sa.BigInteger(), primary_key=True),
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("month_quota_micros", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_key_quotas_org_id", "key_quotas", ["org_id"])


def downgrade() -> None:
    op.drop_index("ix_key_quotas_org_id", table_name="key_quotas")
    op.drop_table("key_quotas")
    op.drop_table("cost_daily")
    op.drop_table("spend_counters")
    op.drop_table("budget_versions")
    op.drop_table("budgets")
