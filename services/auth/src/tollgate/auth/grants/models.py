"""Model grants: which models a group or a single key may call (the Bedrock-style gateway's model
authorisation)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from tollgate.auth.database import Base

SUBJECT_GROUP = "group"
SUBJECT_KEY = "key"


class ModelGrant(Base):
    __tablename__ = "model_grants"
    __table_args__ = (CheckConstraint("subject_type IN ('group', 'key')", name="subject_type"),)

    # The primary key is the lookup Authenticate makes: (subject_type, subject_id) prefix, one probe
    # per subject, and it makes a grant unique.
    subject_type: Mapped[str] = mapped_column(Text, primary_key=True)
    subject_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    model: Mapped[str] = mapped_column(Text, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
