"""ORM table of the model registry (SloughGPT's /models): base models and fine-tuned models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tollgate.training.db import Base


class RegistryModel(Base):
    __tablename__ = "registry_models"
    __table_args__ = (
        # a base model's name is global; an organisation's model names are unique within it
        Index(
            "uq_registry_models_name_live",
            text("coalesce(org_id, '')"),
            "name",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("ix_registry_models_org", "org_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # NULL: a base, for every org
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    type: Mapped[str] = mapped_column(String(32), nullable=False)  # base_model | language_model
    # base: active; an organisation's model: registered -> training -> ready -> deployed (or failed)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    base_model_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    served_name: Mapped[str | None] = mapped_column(String(255), nullable=True)  # ft:... once deployed
    adapter_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    source: Mapped[str | None] = mapped_column(Text, nullable=True)  # a base's GGUF file
    chat_format: Mapped[str | None] = mapped_column(String(32), nullable=True)
    price_training_micros: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
