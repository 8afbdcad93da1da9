"""Budgets (per organisation or per key, daily or monthly), spend counters per period, the daily
cost rollup behind /cost/stats, and the month quotas keys were last seen with."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from tollgate.billing.db import Base


class Budget(Base):
    __tablename__ = "budgets"
    __table_args__ = (
        UniqueConstraint("org_id", "key_id", "period", name="uq_budgets_org_id_key_id_period"),
        CheckConstraint("period IN ('daily', 'monthly')", name="ck_budgets_period"),
        CheckConstraint("limit_micros > 0", name="ck_budgets_limit_positive"),
        CheckConstraint(
            "alert_threshold_pct IS NULL OR alert_threshold_pct BETWEEN 1 AND 100",
            name="ck_budgets_alert_threshold_pct",
        ),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    org_id: Mapped[str] = mapped_column(Text, nullable=False)
    key_id: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")  # 0 = org-wide
    period: Mapped[str] = mapped_column(Text, nullable=False)
    limit_micros: Mapped[int] = mapped_column(BigInteger, nullable=False)
    alert_threshold_pct: Mapped[int | None] = mapped_column(Integer, nullable=True)
    alert_emails: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default=text("'{}'"))
    hard_limit: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class BudgetVersion(Base):
    """Bumped on every budget change of an org: orders Redis refreshes of the budget config."""

    __tablename__ = "budget_versions"

    org_id: Mapped[str] = mapped_column(Text, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False)


class SpendCounter(Base):
    """Spend of an org (key_id 0) or a key in one period ("2026-11" or "2026-11-23"), UTC."""

    __tablename__ = "spend_counters"

    org_id: Mapped[str] = mapped_column(Text, primary_key=True)
    period: Mapped[str] = mapped_column(Text, primary_key=True)
    key_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    spent_micros: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class CostDaily(Base):
    __tablename__ = "cost_daily"
    __table_args__ = (
        CheckConstraint(
            "category IN ('inference', 'training', 'storage', 'network')", name="ck_cost_daily_category"
        ),
    )

    org_id: Mapped[str] = mapped_column(Text, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    category: Mapped[str] = mapped_column(Text, primary_key=True)
    cost_micros: Mapped[int] = mapped_column(BigInteger, nullable=False)
    requests: Mapped[int] = mapped_column(BigInteger, nullable=False)
    tokens: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # token classes inside `tokens` (migration 0006)
    cached_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    cache_write_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    reasoning_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")


class KeyQuota(Base):
    __tablename__ = "key_quotas"
    __table_args__ = (Index("ix_key_quotas_org_id", "org_id"),)

    key_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    org_id: Mapped[str] = mapped_column(Text, nullable=False)
    month_quota_micros: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class LowBalanceSetting(Base):
    """An organisation's low-balance alert: fires when its wallet goes from >= threshold to below."""

    __tablename__ = "low_balance_settings"
    __table_args__ = (
        CheckConstraint("threshold_micros > 0", name="ck_low_balance_settings_threshold_positive"),
    )

    org_id: Mapped[str] = mapped_column(Text, primary_key=True)
    threshold_micros: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # None: alert the addresses of the organisation's monthly budget
    alert_emails: Mapped[list[str] | None] = mapped_column(ARRAY(Text), nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
