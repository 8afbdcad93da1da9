"""token classes in the daily cost rollup: cached input, cache writes and reasoning tokens

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_COLUMNS = ("cached_tokens", "cache_write_tokens", "reasoning_tokens")


def upgrade() -> None:
    for column in _COLUMNS:
        op.add_column("cost_daily", sa.Column(column, sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    for column in reversed(_COLUMNS):
        op.drop_column("cost_daily", column)
