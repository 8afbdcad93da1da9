"""One row per admin action, written in the action's own transaction: no action without its record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, Index, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tollgate.auth.database import Base


class AuditEvent(Base):
    __tablename__ = "audit_events"
    # The list filters by action or by actor, newest first.
    __table_args__ = (
        Index("ix_audit_events_action_id", "action", "id"),
        Index("ix_audit_events_actor_key_id_id", "actor_key_id", "id"),
        Index("ix_audit_events_org_id_id", "org_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor_key_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_user_id: Mapped[str | None] = mapped_column(Text)
    actor_org_id: Mapped[str | None] = mapped_column(Text)
    # The organisation the action concerns (the target's): an org admin reads only these records.
    # NULL for platform-wide objects (groups, the catalog), which only platform admins see.
    org_id: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    target_type: Mapped[str] = mapped_column(Text)
    target_id: Mapped[str | None] = mapped_column(Text)
    ip: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(Text)
    # Names and ids only: never a key, a secret or a password.
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
