"""ORM table of the model catalog (the gateway's own database)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Model(Base):
    __tablename__ = "models"
    __table_args__ = (
        # Soft-deleted rows keep their name, so uniqueness only holds among live models.
        Index("uq_models_name_live", "name", unique=True, postgresql_where=text("deleted_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    provider: Mapped[str] = mapped_column(String(64), nullable=False)
    base_url: Mapped[str] = mapped_column(Text, nullable=False)
    upstream_model: Mapped[str] = mapped_column(String(200), nullable=False)
    # Fernet token of the provider's API key; never the key itself.
    api_key_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    extra_config: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    price_in_micros: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    price_out_micros: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    # Pricing modes (migration 0002): flat per request, per image, per 1M embedded tokens (NULL: price_in).
    price_request_micros: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    price_image_micros: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    price_embedding_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Token classes (migration 0003), per 1M tokens; NULL: priced as input (reasoning: as output).
    price_cached_in_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    price_cache_write_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    price_reasoning_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    group_id: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    multiple: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    max_tokens_default: Mapped[int] = mapped_column(Integer, nullable=False, server_default="4096")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
