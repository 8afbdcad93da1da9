"""Rate tiers (SloughGPT's free / pro / enterprise, editable by platform admins).

A tier is requests per minute, tokens per minute and tokens per day; NULL is "not limited".
Keys and organisations name a tier (`rate_tier`) and may override each measure on their own rows
(`rpm_limit`, `tpm_limit`, `tpd_limit` on api_keys and organizations; NULL: the tier's)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from tollgate.auth.database import Base


class RateTier(Base):
    __tablename__ = "rate_tiers"
    __table_args__ = (
        CheckConstraint("rpm IS NULL OR rpm >= 1", name="rpm_positive"),
        CheckConstraint("tpm IS NULL OR tpm >= 1", name="tpm_positive"),
        CheckConstraint("tpd IS NULL OR tpd >= 1", name="tpd_positive"),
    )

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    rpm: Mapped[int | None] = mapped_column(BigInteger)
    tpm: Mapped[int | None] = mapped_column(BigInteger)
    tpd: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
