"""which pepper made each stored key hash and guard secret hash (pepper rotation)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

NULL: made before pepper ids were recorded; auth labels such rows with its current pepper at start
when no previous pepper is configured (every usable hash is then under it), else lazily on use.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("key_pepper_id", sa.Text(), nullable=True))
    op.add_column("api_keys", sa.Column("secret_pepper_id", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("api_keys", "secret_pepper_id")
    op.drop_column("api_keys", "key_pepper_id")
