"""Payments (admin recharges and provider purchases), credit packages, refunds and adjustments.

Every row that moves money has a natural unique key: a payment its reference and its provider
payment id, a refund its refund reference, an adjustment its Idempotency-Key. The wallet only moves
through ledger entries (`wallets.service.post`) written in the same transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from tollgate.billing.db import Base

PAYMENT_STATUSES = ("pending", "succeeded", "failed", "refunded")


class CreditPackage(Base):
    __tablename__ = "credit_packages"
    __table_args__ = (
        CheckConstraint("price_micros > 0", name="ck_credit_packages_price_positive"),
        CheckConstraint("credits_micros > 0", name="ck_credit_packages_credits_positive"),
        CheckConstraint("bonus_bps BETWEEN 0 AND 10000", name="ck_credit_packages_bonus_range"),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    price_micros: Mapped[int] = mapped_column(BigInteger, nullable=False)  # what the buyer pays
    currency: Mapped[str] = mapped_column(Text, nullable=False, server_default="usd")
    credits_micros: Mapped[int] = mapped_column(BigInteger, nullable=False)
    bonus_bps: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")  # 1000 = 10%
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    sort_order: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount_micros > 0", name="ck_payments_amount_positive"),
        CheckConstraint("paid_micros > 0", name="ck_payments_paid_positive"),
        CheckConstraint("bonus_micros >= 0", name="ck_payments_bonus_nonnegative"),
        CheckConstraint("refunded_micros BETWEEN 0 AND paid_micros", name="ck_payments_refund_bounds"),
        CheckConstraint(
            "status IN ('pending', 'succeeded', 'failed', 'refunded')", name="ck_payments_status"
        ),
        UniqueConstraint("provider", "provider_payment_id", name="uq_payments_provider_payment"),
        Index("ix_payments_key_id_id", "key_id", "id"),
        Index("ix_payments_org_id_id", "org_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    payment_ref: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    org_id: Mapped[str] = mapped_column(Text, nullable=False)
    key_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # credits granted, before the bonus (the ledger's 'recharge' entry)
    amount_micros: Mapped[int] = mapped_column(BigInteger, nullable=False)
    method: Mapped[str] = mapped_column(Text, nullable=False)  # admin | package
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default="succeeded")
    provider: Mapped[str | None] = mapped_column(Text, nullable=True)
    provider_payment_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    package_id: Mapped[str | None] = mapped_column(Text, ForeignKey("credit_packages.id"), nullable=True)
    paid_micros: Mapped[int] = mapped_column(BigInteger, nullable=False)  # money paid, in currency
    currency: Mapped[str] = mapped_column(Text, nullable=False, server_default="usd")
    bonus_micros: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    refunded_micros: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    checkout_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    succeeded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )

    @property
    def granted_micros(self) -> int:
        return self.amount_micros + self.bonus_micros


class ProviderEvent(Base):
    """A verified webhook event, once per (provider, event id)."""

    __tablename__ = "provider_events"

    provider: Mapped[str] = mapped_column(Text, primary_key=True)
    event_id: Mapped[str] = mapped_column(Text, primary_key=True)
    event_type: Mapped[str] = mapped_column(Text, nullable=False)
    provider_payment_id: Mapped[str] = mapped_column(Text, nullable=False)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint("amount_micros > 0", name="ck_refunds_amount_positive"),
        CheckConstraint("credits_micros >= 0", name="ck_refunds_credits_nonnegative"),
        Index("ix_refunds_payment_id", "payment_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    refund_ref: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    payment_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("payments.id"), nullable=False)
    org_id: Mapped[str] = mapped_column(Text, nullable=False)
    amount_micros: Mapped[int] = mapped_column(BigInteger, nullable=False)  # money returned
    credits_micros: Mapped[int] = mapped_column(BigInteger, nullable=False)  # credits taken back
    reason: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    by_key_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class Adjustment(Base):
    __tablename__ = "adjustments"
    __table_args__ = (
        CheckConstraint("amount_micros <> 0", name="ck_adjustments_amount_nonzero"),
        Index("ix_adjustments_org_id_id", "org_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    adjustment_ref: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    org_id: Mapped[str] = mapped_column(Text, nullable=False)
    key_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    amount_micros: Mapped[int] = mapped_column(BigInteger, nullable=False)  # signed
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    by_key_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
