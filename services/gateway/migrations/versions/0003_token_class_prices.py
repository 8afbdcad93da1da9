"""token class prices: cached input, cache writes and reasoning tokens

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_COLUMNS = ("price_cached_in_micros", "price_cache_write_micros", "price_reasoning_micros")


def upgrade() -> None:
    # NULL: the class is priced like the tokens it is part of (input, or output for reasoning)
    for column in _COLUMNS:
        op.add_column("models", sa.Column(column, sa.BigInteger(), nullable=True))
    op.create_check_constraint(
        "ck_models_token_class_prices_not_negative",
        "models",
        " AND ".join(f"({c} IS NULL OR {c} >= 0)" for c in _COLUMNS),
    )


def downgrade() -> None:
    op.drop_constraint("ck_models_token_class_prices_not_negative", "models", type_="check")
    for column in reversed(_COLUMNS):
        op.drop_column("models", column)
