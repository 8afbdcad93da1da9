"""Organisations (who pays), users (who acts) and who belongs to which organisation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from tollgate.auth.database import Base

SYSTEM_ORG_ID = "org_system"


class Organization(Base):
    __tablename__ = "organizations"
    __table_args__ = (
        CheckConstraint("rpm_limit IS NULL OR rpm_limit >= 1", name="rpm_limit_positive"),
        CheckConstraint("tpm_limit IS NULL OR tpm_limit >= 1", name="tpm_limit_positive"),
        CheckConstraint("tpd_limit IS NULL OR tpd_limit >= 1", name="tpd_limit_positive"),
        CheckConstraint("chat_recording IN ('off', 'metadata', 'full')", name="chat_recording"),
        CheckConstraint("chat_retention_days BETWEEN 1 AND 3650", name="chat_retention_days"),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)  # "org_<hex>"
    name: Mapped[str] = mapped_column(Text)
    # A personal organisation belongs to one user (the Bedrock-style gateway: a key stands for a person).
    personal: Mapped[bool] = mapped_column(server_default=text("false"))
    # Rate limits of the whole organisation (docs/limits.md), enforced beside each key's own:
    # a tier (NULL: none) and per-measure overrides (NULL: the tier's).
    rate_tier: Mapped[str | None] = mapped_column(ForeignKey("rate_tiers.name"), index=True)
    rpm_limit: Mapped[int | None] = mapped_column(BigInteger)
    tpm_limit: Mapped[int | None] = mapped_column(BigInteger)
    tpd_limit: Mapped[int | None] = mapped_column(BigInteger)
    # Chat records (docs/chat-records.md): what the gateway hands analytics, and for how many days.
    chat_recording: Mapped[str] = mapped_column(Text, server_default=text("'off'"))
    chat_retention_days: Mapped[int] = mapped_column(Integer, server_default=text("30"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('user', 'admin')", name="role"),)

    id: Mapped[str] = mapped_column(Text, primary_key=True)  # "usr_<hex>"
    name: Mapped[str] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text, server_default=text("'user'"))
    group_id: Mapped[int | None] = mapped_column(Integer)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    # argon2id PHC string; NULL for users who only ever act through API keys.
    password_hash: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# One login per email, case-insensitively. Only users with a password sign in by email: users
# created with an API key (the Bedrock-style gateway) may share an email, as they always could.
Index(
    "uq_users_login_email",
    func.lower(User.email),
    unique=True,
    postgresql_where=User.password_hash.is_not(None),
)


class Membership(Base):
    """A user's role in an organisation: the owner of a personal organisation is its user."""

    __tablename__ = "memberships"
    __table_args__ = (CheckConstraint("role IN ('owner', 'admin', 'member')", name="role"),)

    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
