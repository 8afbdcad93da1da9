"""token classes: cached input, cache writes and reasoning tokens on usage facts and rollups

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("tokens_cached_in", "tokens_cache_write", "tokens_reasoning")


def upgrade() -> None:
    for table in ("usage_events", "usage_daily"):
        for column in _COLUMNS:
            op.add_column(table, sa.Column(column, sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    for table in ("usage_daily", "usage_events"):
        for column in reversed(_COLUMNS):
            op.drop_column(table, column)
