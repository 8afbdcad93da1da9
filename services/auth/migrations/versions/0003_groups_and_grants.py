"""groups and model grants

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "groups",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_groups"),
        sa.UniqueConstraint("name", name="uq_groups_name"),
    )
    # Seed 004's examples put keys in group 1 without ever creating it: it is the default group.
    op.execute("INSERT INTO groups (id, name, description) VALUES (1, 'default', 'The default group')")
    op.execute("SELECT setval(pg_get_serial_sequence('groups', 'id'), (SELECT max(id) FROM groups))")
    op.create_table(
        "model_grants",
        sa.Column("subject_type", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.BigInteger(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("subject_type IN ('group', 'key')", name=op.f("ck_model_grants_subject_type")),
        sa.PrimaryKeyConstraint("subject_type", "subject_id", "model", name="pk_model_grants"),
    )
    # Grant changes on a group announce every key in it; deleting a group checks for its keys.
    op.create_index("ix_api_keys_group_id", "api_keys", ["group_id"])


def downgrade() -> None:
    op.drop_index("ix_api_keys_group_id", table_name="api_keys")
    op.drop_table("model_grants")
    op.drop_table("groups")
