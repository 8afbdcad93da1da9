"""pricing modes: per-request, per-image and embedding prices

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "models", sa.Column("price_request_micros", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column("models", sa.Column("price_image_micros", sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column("models", sa.Column("price_embedding_micros", sa.BigInteger(), nullable=True))
    op.create_check_constraint(
        "ck_models_prices_not_negative",
        "models",
        "price_in_micros >= 0 AND price_out_micros >= 0 AND price_request_micros >= 0"
        " AND price_image_micros >= 0 AND (price_embedding_micros IS NULL OR price_embedding_micros >= 0)",
    )


def downgrade() -> None:
    op.drop_constraint("ck_models_prices_not_negative", "models", type_="check")
    op.drop_column("models", "price_embedding_micros")
    op.drop_column("models", "price_image_micros")
    op.drop_column("models", "price_request_micros")
