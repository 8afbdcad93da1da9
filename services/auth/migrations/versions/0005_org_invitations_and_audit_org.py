"""organisation invitations; the organisation each audit record concerns

Revision ID: 0005
Revises: 0004
Create Date: 2025-01-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "org_invitations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("invited_by", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_by", sa.Text(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('owner', 'admin', 'member')", name=op.f("ck_org_invitations_role")),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name="fk_org_invitations_org_id_organizations"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_org_invitations"),
        sa.UniqueConstraint("token_hash", name="uq_org_invitations_token_hash"),
    )
    op.create_index("ix_org_invitations_org_id", "org_invitations", ["org_id"])
    # The organisation an audit record concerns (the target's), so an org admin reads only theirs.
    op.add_column("audit_events", sa.Column("org_id", sa.Text(), nullable=True))
    op.create_index("ix_audit_events_org_id_id", "audit_events", ["org_id", "id"])
    op.execute(
        "UPDATE audit_events a SET org_id = k.org_id FROM api_keys k"
        " WHERE a.target_type = 'api_key' AND a.target_id = k.id::text"
    )


def downgrade() -> None:
    op.drop_index("ix_audit_events_org_id_id", table_name="audit_events")
    op.drop_column("audit_events", "org_id")
    op.drop_index("ix_org_invitations_org_id", table_name="org_invitations")
    op.drop_table("org_invitations")
