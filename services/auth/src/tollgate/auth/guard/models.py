"""The first report of each idempotent guard log-usage (migration 0009): its retries re-send it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, LargeBinary, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from tollgate.auth.database import Base


class GuardUsageReport(Base):
    """One row per event id of a log-usage sent with an Idempotency-Key: the serialized
    UsageRecorded of its first attempt, so every retry publishes the same bytes (the same event
    time, which billing partitions its settlement rows by). Kept `guard_report_retention_days`."""

    __tablename__ = "guard_usage_reports"
    __table_args__ = (Index("ix_guard_usage_reports_created_at", "created_at"),)

    event_id: Mapped[str] = mapped_column(Text, primary_key=True)
    key_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    usage_event: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
