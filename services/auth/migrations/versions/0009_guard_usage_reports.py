"""guard API: the first report of each idempotent log-usage, re-sent by its retries

`POST /api/guard/log-usage` with an Idempotency-Key names one usage report. Its event id was always
the same for every retry, but each retry was stamped with its own time; billing partitions its
settlement rows by the event's UTC day (billing migration 0007), so every copy of an event must carry
the time of the first. This table keeps the first report's serialized UsageRecorded per event id;
a retry publishes those bytes again (docs/identity.md, "Idempotency"). Rows are deleted
`AUTH_GUARD_REPORT_RETENTION_DAYS` (40) after the report, longer than billing keeps settlement rows.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guard_usage_reports",
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=False),
        sa.Column("usage_event", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("event_id", name="pk_guard_usage_reports"),
    )
    # retention deletes walk the oldest rows; appended at the right edge, so cheap to keep
    op.create_index("ix_guard_usage_reports_created_at", "guard_usage_reports", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_guard_usage_reports_created_at", table_name="guard_usage_reports")
    op.drop_table("guard_usage_reports")
