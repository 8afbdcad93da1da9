"""Usage facts (one row per gateway request) and their daily rollup per org and model."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, Date, DateTime, Index, PrimaryKeyConstraint, Text
from sqlalchemy.orm import Mapped, mapped_column

from tollgate.analytics.db import Base


class UsageEvent(Base):
    """Partitioned by range of `created_at`, one partition per UTC day (migration 0003, pg_partman):
    the primary key must hold the partition key; `created_at` is the event's own finish time."""

    __tablename__ = "usage_events"
    __table_args__ = (
        PrimaryKeyConstraint("event_id", "created_at", name="pk_usage_events"),
        Index("ix_usage_events_org_created", "org_id", "created_at"),
        {"postgresql_partition_by": "RANGE (created_at)"},
    )

    # The gateway's request id: the natural key every consumer dedupes on.
    event_id: Mapped[str] = mapped_column(Text)
    org_id: Mapped[str] = mapped_column(Text)
    key_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(Text)
    provider: Mapped[str] = mapped_column(Text)
    tokens_in: Mapped[int] = mapped_column(BigInteger)
    tokens_out: Mapped[int] = mapped_column(BigInteger)
    cost_micros: Mapped[int] = mapped_column(BigInteger)
    latency_ms: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(Text)
    stream: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # token classes inside tokens_in / tokens_out (migration 0002)
    tokens_cached_in: Mapped[int] = mapped_column(BigInteger, server_default="0")
    tokens_cache_write: Mapped[int] = mapped_column(BigInteger, server_default="0")
    tokens_reasoning: Mapped[int] = mapped_column(BigInteger, server_default="0")


class UsageDaily(Base):
    """Reports read this table only, so they stay cheap however many facts accumulate."""

    __tablename__ = "usage_daily"
    # org first: every report is one org over a day range.
    __table_args__ = (PrimaryKeyConstraint("org_id", "day", "model", name="pk_usage_daily"),)

    day: Mapped[dt.date] = mapped_column(Date)
    org_id: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(Text)
    requests: Mapped[int] = mapped_column(BigInteger)
    errors: Mapped[int] = mapped_column(BigInteger)
    tokens_in: Mapped[int] = mapped_column(BigInteger)
    tokens_out: Mapped[int] = mapped_column(BigInteger)
    cost_micros: Mapped[int] = mapped_column(BigInteger)
    latency_ms_sum: Mapped[int] = mapped_column(BigInteger)
    # token classes inside tokens_in / tokens_out (migration 0002)
    tokens_cached_in: Mapped[int] = mapped_column(BigInteger, server_default="0")
    tokens_cache_write: Mapped[int] = mapped_column(BigInteger, server_default="0")
    tokens_reasoning: Mapped[int] = mapped_column(BigInteger, server_default="0")


class UsageHourly(Base):
    """The hourly rollup, partitioned by month of `hour` (migration 0003), kept for its own retention."""

    __tablename__ = "usage_hourly"
    __table_args__ = (
        PrimaryKeyConstraint("org_id", "hour", "model", name="pk_usage_hourly"),
        {"postgresql_partition_by": "RANGE (hour)"},
    )

    hour: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    org_id: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(Text)
    requests: Mapped[int] = mapped_column(BigInteger)
    errors: Mapped[int] = mapped_column(BigInteger)
    tokens_in: Mapped[int] = mapped_column(BigInteger)
    tokens_out: Mapped[int] = mapped_column(BigInteger)
    cost_micros: Mapped[int] = mapped_column(BigInteger)
    latency_ms_sum: Mapped[int] = mapped_column(BigInteger)
    tokens_cached_in: Mapped[int] = mapped_column(BigInteger, server_default="0")
    tokens_cache_write: Mapped[int] = mapped_column(BigInteger, server_default="0")
    tokens_reasoning: Mapped[int] = mapped_column(BigInteger, server_default="0")
