"""One row per usage event settled (within the retention): its primary key is what makes
settlement exactly-once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from tollgate.billing.db import Base


class UsageSettlement(Base):
    """Partitioned by range of `event_day`, one partition per UTC day (migration 0007, pg_partman).
    `event_day` is UTC midnight of the event's own time (finish, else start), which every copy of an
    event carries unchanged (docs/billing.md, "Exactly-once settlement at scale": each producer
    re-sends its first copy), so the primary key (event_id, event_day) catches a copy in its first
    copy's partition; the epoch when the event has no usable time (those rows, and the ones migrated
    from before partitioning, sit in the default partition, which settlement also checks by event id
    alone)."""

    __tablename__ = "usage_settlements"
    __table_args__ = ({"postgresql_partition_by": "RANGE (event_day)"},)

    event_id: Mapped[str] = mapped_column(Text, primary_key=True)
    event_day: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    org_id: Mapped[str] = mapped_column(Text, nullable=False)
    key_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    hold_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    model: Mapped[str | None] = mapped_column(Text, nullable=True)
    cost_micros: Mapped[int] = mapped_column(BigInteger, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
