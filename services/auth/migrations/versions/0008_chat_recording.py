"""organisations' chat records setting: recording mode and retention (docs/chat-records.md)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "organizations", sa.Column("chat_recording", sa.Text(), nullable=False, server_default="off")
    )
    op.add_column(
        "organizations", sa.Column("chat_retention_days", sa.Integer(), nullable=False, server_default="30")
    )
    op.create_check_constraint(
        op.f("ck_organizations_chat_recording"),
        "organizations",
        "chat_recording IN ('off', 'metadata', 'full')",
    )
    op.create_check_constraint(
        op.f("ck_organizations_chat_retention_days"),
        "organizations",
        "chat_retention_days BETWEEN 1 AND 3650",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_organizations_chat_retention_days"), "organizations", type_="check")
    op.drop_constraint(op.f("ck_organizations_chat_recording"), "organizations", type_="check")
    op.drop_column("organizations", "chat_retention_days")
    op.drop_column("organizations", "chat_recording")
