"""feishu bots: bots per organisation (secrets encrypted) and their pushed events (dedup + work)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feishu_bots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("provider", sa.String(64), server_default="", nullable=False),
        sa.Column("app_id", sa.String(128), nullable=False),
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("api_key_encrypted", sa.Text(), nullable=False),
        sa.Column("api_key_hint", sa.String(32), nullable=False),
        sa.Column("app_secret_encrypted", sa.Text(), nullable=False),
        sa.Column("encrypt_key_encrypted", sa.Text(), nullable=True),
        sa.Column("verification_token_encrypted", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_feishu_bots_org_live",
        "feishu_bots",
        ["org_id", "id"],
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(
        "uq_feishu_bots_org_app_live",
        "feishu_bots",
        ["org_id", "app_id"],
        unique=True,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "feishu_bot_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("bot_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), server_default="received", nullable=False),
        sa.Column("prompt_encrypted", sa.Text(), nullable=True),
        sa.Column("answer_encrypted", sa.Text(), nullable=True),
        sa.Column("error", sa.String(200), nullable=True),
        sa.Column("reply_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "next_attempt_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(["bot_id"], ["feishu_bots.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("bot_id", "event_id", name="uq_feishu_bot_events_bot_event"),
    )
    op.create_index(
        "ix_feishu_bot_events_due",
        "feishu_bot_events",
        ["next_attempt_at"],
        postgresql_where=sa.text("status IN ('received', 'calling', 'answered')"),
    )
    op.create_index("ix_feishu_bot_events_created", "feishu_bot_events", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_feishu_bot_events_created", table_name="feishu_bot_events")
    op.drop_index("ix_feishu_bot_events_due", table_name="feishu_bot_events")
    op.drop_table("feishu_bot_events")
    op.drop_index("uq_feishu_bots_org_app_live", table_name="feishu_bots")
    op.drop_index("ix_feishu_bots_org_live", table_name="feishu_bots")
    op.drop_table("feishu_bots")
