"""chat records: sessions, threads and their entries (content encrypted), per-org retention

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "chat_sessions",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("title_enc", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("org_id", "key_id", "external_id", name="uq_chat_sessions_org_key_external"),
    )
    op.create_index("ix_chat_sessions_org_updated", "chat_sessions", ["org_id", "updated_at"])
    op.create_index("ix_chat_sessions_user_updated", "chat_sessions", ["org_id", "user_id", "updated_at"])
    op.create_table(
        "chat_threads",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "session_id",
            sa.BigInteger(),
            sa.ForeignKey("chat_sessions.id", ondelete="CASCADE", name="fk_chat_threads_session"),
            nullable=False,
        ),
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("thread_key", sa.Text(), nullable=False),
        sa.Column("title_enc", sa.Text(), nullable=True),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("session_id", "thread_key", name="uq_chat_threads_session_key"),
    )
    op.create_index("ix_chat_threads_org_updated", "chat_threads", ["org_id", "updated_at"])
    op.create_table(
        "chat_entries",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "thread_id",
            sa.BigInteger(),
            sa.ForeignKey("chat_threads.id", ondelete="CASCADE", name="fk_chat_entries_thread"),
            nullable=False,
        ),
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("tokens_in", sa.BigInteger(), nullable=False),
        sa.Column("tokens_out", sa.BigInteger(), nullable=False),
        sa.Column("messages_enc", sa.Text(), nullable=True),
        sa.Column("answer_enc", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("event_id", name="uq_chat_entries_event_id"),
    )
    op.create_index("ix_chat_entries_thread", "chat_entries", ["thread_id", "id"])
    op.create_index("ix_chat_entries_org_created", "chat_entries", ["org_id", "created_at"])
    op.create_table(
        "chat_retention",
        sa.Column("org_id", sa.Text(), primary_key=True),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("chat_retention")
    op.drop_table("chat_entries")
    op.drop_table("chat_threads")
    op.drop_table("chat_sessions")
