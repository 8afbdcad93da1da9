"""API keys: only the HMAC of a key is stored, with a short prefix to recognise it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Integer, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from tollgate.auth.database import Base

DEFAULT_PERMISSIONS = ("read", "write", "delete")


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("role IN ('user', 'admin')", name="role"),
        CheckConstraint("month_quota_micros >= 0", name="month_quota_non_negative"),
        CheckConstraint("rpm_limit IS NULL OR rpm_limit >= 1", name="rpm_limit_positive"),
        CheckConstraint("tpm_limit IS NULL OR tpm_limit >= 1", name="tpm_limit_positive"),
        CheckConstraint("tpd_limit IS NULL OR tpd_limit >= 1", name="tpd_limit_positive"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # The lookup on the hot path: one unique-index probe per Authenticate.
    key_hash: Mapped[str] = mapped_column(Text, unique=True)
    key_prefix: Mapped[str] = mapped_column(Text)
    # HMAC of the optional secondary secret (the guard API's `SecretKey`); NULL until one is issued.
    secret_hash: Mapped[str | None] = mapped_column(Text)
    # The key id (tollgate.common.keyring) of the pepper each hash was made with, so a pepper rotation
    # can tell what is still under an old one (keys/peppers.py); NULL: from before migration 0007.
    key_pepper_id: Mapped[str | None] = mapped_column(Text)
    secret_pepper_id: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(Text, server_default=text("'user'"))
    group_id: Mapped[int | None] = mapped_column(Integer, index=True)
    permissions: Mapped[list[str]] = mapped_column(
        ARRAY(Text), server_default=text("'{read,write,delete}'::text[]")
    )
    month_quota_micros: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    # Rate limits (docs/limits.md): a tier (NULL: AUTH_DEFAULT_RATE_TIER, else none) and per-measure
    # overrides (NULL: the tier's).
    rate_tier: Mapped[str | None] = mapped_column(ForeignKey("rate_tiers.name"), index=True)
    rpm_limit: Mapped[int | None] = mapped_column(BigInteger)
    tpm_limit: Mapped[int | None] = mapped_column(BigInteger)
    tpd_limit: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
