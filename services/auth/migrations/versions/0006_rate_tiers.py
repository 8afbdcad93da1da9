"""rate tiers, and the tier and limit overrides of keys and organisations

Revision ID: 0006
Revises: 0005
Create Date: 2025-01-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_MEASURES = ("rpm", "tpm", "tpd")


def upgrade() -> None:
    op.create_table(
        "rate_tiers",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("rpm", sa.BigInteger(), nullable=True),
        sa.Column("tpm", sa.BigInteger(), nullable=True),
        sa.Column("tpd", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        *(
            sa.CheckConstraint(f"{m} IS NULL OR {m} >= 1", name=op.f(f"ck_rate_tiers_{m}_positive"))
            for m in _MEASURES
        ),
        sa.PrimaryKeyConstraint("name", name="pk_rate_tiers"),
    )
    # SloughGPT's published tiers (seed 001, "Rate Limiting"): requests per minute and tokens per
    # day. Tokens per minute are not published, so NULL (not limited) until an admin sets them.
    op.execute(
        "INSERT INTO rate_tiers (name, rpm, tpm, tpd) VALUES"
        " ('free', 100, NULL, 10000),"
        " ('pro', 1000, NULL, 100000),"
        " ('enterprise', 10000, NULL, 1000000)"
    )
    # Existing keys and organisations get no tier: nothing is limited until an admin says so.
    for table in ("api_keys", "organizations"):
        op.add_column(table, sa.Column("rate_tier", sa.Text(), nullable=True))
        for m in _MEASURES:
            op.add_column(table, sa.Column(f"{m}_limit", sa.BigInteger(), nullable=True))
            op.create_check_constraint(
                op.f(f"ck_{table}_{m}_limit_positive"), table, f"{m}_limit IS NULL OR {m}_limit >= 1"
            )
        op.create_foreign_key(
            f"fk_{table}_rate_tier_rate_tiers", table, "rate_tiers", ["rate_tier"], ["name"]
        )
        # deleting a tier checks for its users; changing one announces their keys
        op.create_index(f"ix_{table}_rate_tier", table, ["rate_tier"])


def downgrade() -> None:
    for table in ("organizations", "api_keys"):
        op.drop_index(f"ix_{table}_rate_tier", table_name=table)
        op.drop_constraint(f"fk_{table}_rate_tier_rate_tiers", table, type_="foreignkey")
        for m in _MEASURES:
            op.drop_constraint(op.f(f"ck_{table}_{m}_limit_positive"), table, type_="check")
            op.drop_column(table, f"{m}_limit")
        op.drop_column(table, "rate_tier")
    op.drop_table("rate_tiers")
