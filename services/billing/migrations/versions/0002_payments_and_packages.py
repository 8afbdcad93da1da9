"""credit packages, provider payments, webhook receipts, refunds and adjustments

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

_KINDS_BEFORE = "kind IN ('recharge', 'usage', 'refund', 'adjustment')"
_KINDS_AFTER = "kind IN ('recharge', 'usage', 'refund', 'adjustment', 'bonus')"

# Seed 002's packages: price in USD (1 credit = 1 USD), bonus in basis points of the credits.
_SEED_PACKAGES = [
    ("pkg_5", "$5", 5_000_000, 5_000_000, 0, 10),
    ("pkg_10", "$10", 10_000_000, 10_000_000, 0, 20),
    ("pkg_25", "$25", 25_000_000, 25_000_000, 1000, 30),
    ("pkg_50", "$50", 50_000_000, 50_000_000, 1500, 40),
    ("pkg_100", "$100", 100_000_000, 100_000_000, 2000, 50),
]


def _timestamps() -> list[sa.Column[sa.DateTime]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


def upgrade() -> None:
    op.drop_constraint("ck_ledger_entries_kind", "ledger_entries", type_="check")
    op.create_check_constraint("ck_ledger_entries_kind", "ledger_entries", _KINDS_AFTER)

    packages = op.create_table(
        "credit_packages",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("price_micros", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False, server_default="usd"),
        sa.Column("credits_micros", sa.BigInteger(), nullable=False),
        sa.Column("bonus_bps", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("sort_order", sa.Integer(), nullable=False, server_default="0"),
        *_timestamps(),
        sa.CheckConstraint("price_micros > 0", name="ck_credit_packages_price_positive"),
        sa.CheckConstraint("credits_micros > 0", name="ck_credit_packages_credits_positive"),
        sa.CheckConstraint("bonus_bps BETWEEN 0 AND 10000", name="ck_credit_packages_bonus_range"),
    )
    op.bulk_insert(
        packages,
        [
            {
                "id": pid,
                "name": name,
                "price_micros": price,
                "credits_micros": credits,
                "bonus_bps": bps,
                "sort_order": order,
            }
            for pid, name, price, credits, bps, order in _SEED_PACKAGES
        ],
    )

    # Payments grow from "an admin recharge" into provider payments with a lifecycle. Existing rows
    # are admin recharges: succeeded, paid what they credited, no bonus.
    op.add_column("payments", sa.Column("status", sa.Text(), nullable=False, server_default="succeeded"))
    op.add_column("payments", sa.Column("provider", sa.Text(), nullable=True))
    op.add_column("payments", sa.Column("provider_payment_id", sa.Text(), nullable=True))
    op.add_column(
        "payments", sa.Column("package_id", sa.Text(), sa.ForeignKey("credit_packages.id"), nullable=True)
    )
    op.add_column("payments", sa.Column("paid_micros", sa.BigInteger(), nullable=True))
    op.add_column("payments", sa.Column("currency", sa.Text(), nullable=False, server_default="usd"))
    op.add_column("payments", sa.Column("bonus_micros", sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column(
        "payments", sa.Column("refunded_micros", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column("payments", sa.Column("checkout_url", sa.Text(), nullable=True))
    op.add_column("payments", sa.Column("succeeded_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "payments",
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.execute("UPDATE payments SET paid_micros = amount_micros, succeeded_at = created_at")
    op.alter_column("payments", "paid_micros", nullable=False)
    op.create_check_constraint(
        "ck_payments_status", "payments", "status IN ('pending', 'succeeded', 'failed', 'refunded')"
    )
    op.create_check_constraint(
        "ck_payments_refund_bounds", "payments", "refunded_micros BETWEEN 0 AND paid_micros"
    )
    op.create_check_constraint("ck_payments_paid_positive", "payments", "paid_micros > 0")
    op.create_check_constraint("ck_payments_bonus_nonnegative", "payments", "bonus_micros >= 0")
    op.create_unique_constraint(
        "uq_payments_provider_payment", "payments", ["provider", "provider_payment_id"]
    )
    op.create_index("ix_payments_org_id_id", "payments", ["org_id", "id"])

    # One row per verified provider event: a redelivered event is recognised before any lock.
    op.create_table(
        "provider_events",
        sa.Column("provider", sa.Text(), primary_key=True),
        sa.Column("event_id", sa.Text(), primary_key=True),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("provider_payment_id", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "refunds",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("refund_ref", sa.Text(), nullable=False, unique=True),
        sa.Column("payment_id", sa.BigInteger(), sa.ForeignKey("payments.id"), nullable=False),
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("credits_micros", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("by_key_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("amount_micros > 0", name="ck_refunds_amount_positive"),
        sa.CheckConstraint("credits_micros >= 0", name="ck_refunds_credits_nonnegative"),
    )
    op.create_index("ix_refunds_payment_id", "refunds", ["payment_id"])
    op.create_table(
        "adjustments",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("adjustment_ref", sa.Text(), nullable=False, unique=True),
        sa.Column("org_id", sa.Text(), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=True),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("by_key_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("amount_micros <> 0", name="ck_adjustments_amount_nonzero"),
    )
    op.create_index("ix_adjustments_org_id_id", "adjustments", ["org_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_adjustments_org_id_id", table_name="adjustments")
    op.drop_table("adjustments")
    op.drop_index("ix_refunds_payment_id", table_name="refunds")
    op.drop_table("refunds")
    op.drop_table("provider_events")
    op.drop_index("ix_payments_org_id_id", table_name="payments")
    op.drop_constraint("uq_payments_provider_payment", "payments", type_="unique")
    for name in (
        "ck_payments_bonus_nonnegative",
        "ck_payments_paid_positive",
        "ck_payments_refund_bounds",
        "ck_payments_status",
    ):
        op.drop_constraint(name, "payments", type_="check")
    for column in (
        "updated_at",
        "succeeded_at",
        "checkout_url",
        "refunded_micros",
        "bonus_micros",
        "currency",
        "paid_micros",
        "package_id",
        "provider_payment_id",
        "provider",
        "status",
    ):
        op.drop_column("payments", column)
    op.drop_table("credit_packages")
    # NOT VALID: bonus entries already written stay (the ledger is append-only), new ones are refused.
    op.drop_constraint("ck_ledger_entries_kind", "ledger_entries", type_="check")
    op.execute(
        f"ALTER TABLE ledger_entries ADD CONSTRAINT ck_ledger_entries_kind CHECK ({_KINDS_BEFORE}) NOT VALID"
    )
