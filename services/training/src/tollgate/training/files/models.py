"""ORM table of uploaded training files (the content lives on the data volume)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from tollgate.training.db import Base


class TrainingFile(Base):
    __tablename__ = "training_files"
    __table_args__ = (Index("ix_training_files_org_created", "org_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(64), nullable=False)
    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    purpose: Mapped[str] = mapped_column(String(32), nullable=False)
    bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    examples: Mapped[int] = mapped_column(Integer, nullable=False)
    example_format: Mapped[str] = mapped_column(String(32), nullable=False)  # chat | prompt_completion
    # Upper bound of the tokens one epoch over this file trains (see files/validation.py).
    estimated_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False)
    storage_path: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
