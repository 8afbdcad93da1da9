"""Usage facts (one row per gateway request) and their daily rollup per org and model."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ARRAY, BigInteger, Boolean, Date, DateTime, Index, PrimaryKeyConstraint, Text
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
    # the gateway's operation ("chat", "embedding", ...) and route (migration 0005)
    operation: Mapped[str] = mapped_column(Text, server_default="chat")
    endpoint: Mapped[str] = mapped_column(Text, server_default="")


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


class UsageKeyHourly(Base):
    """The rollup by key and operation with a latency histogram (migration 0005): filtered usage
    reports and latency percentiles read it. Partitioned by month of `hour`, kept as `usage_hourly`.
    `latency_buckets[i]` counts answered requests in bucket i of usage.histogram.LATENCY_BOUNDS_MS."""

    __tablename__ = "usage_key_hourly"
    __table_args__ = (
        PrimaryKeyConstraint("org_id", "hour", "key_id", "operation", "model", name="pk_usage_key_hourly"),
        {"postgresql_partition_by": "RANGE (hour)"},
    )

    hour: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    org_id: Mapped[str] = mapped_column(Text)
    key_id: Mapped[int] = mapped_column(BigInteger)
    operation: Mapped[str] = mapped_column(Text)
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
    latency_buckets: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    latency_ms_max: Mapped[int] = mapped_column(BigInteger, server_default="0")


class UsageLatencyDaily(Base):
    """Latency histograms per org, UTC day and model (migration 0005), kept for ever like
    usage_daily: unfiltered latency reports read at most a row per day and model of it."""

    __tablename__ = "usage_latency_daily"
    __table_args__ = (PrimaryKeyConstraint("org_id", "day", "model", name="pk_usage_latency_daily"),)

    day: Mapped[dt.date] = mapped_column(Date)
    org_id: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(Text)
    latency_buckets: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    latency_ms_max: Mapped[int] = mapped_column(BigInteger, server_default="0")
