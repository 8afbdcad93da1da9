"""ORM tables of the Feishu bots (the gateway's own database, migration 0004)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from tollgate.gateway.catalog.models import Base

# An event's way through the bot (worker.py): received → calling (the model call, at most once)
# → answered (the answer, or an apology, waiting to be replied) → replied; or failed.
RECEIVED, CALLING, ANSWERED, REPLIED, FAILED = "received", "calling", "answered", "replied", "failed"


class FeishuBot(Base):
    __tablename__ = "feishu_bots"
    __table_args__ = (
        Index("ix_feishu_bots_org_live", "org_id", "id", postgresql_where=text("deleted_at IS NULL")),
        # one live bot per Feishu app in an organisation: a save naming the app updates it
        Index(
            "uq_feishu_bots_org_app_live",
            "org_id",
            "app_id",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    provider: Mapped[str] = mapped_column(String(64), nullable=False, server_default="")
    app_id: Mapped[str] = mapped_column(String(128), nullable=False)
    model_id: Mapped[str] = mapped_column(String(200), nullable=False)
    # secretbox ciphertexts (tollgate.common.secretbox), never the secrets themselves
    api_key_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    api_key_hint: Mapped[str] = mapped_column(String(32), nullable=False)  # "tg_ab…" for the masked view
    app_secret_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    encrypt_key_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    verification_token_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class FeishuBotEvent(Base):
    """One pushed message event: the de-duplication record (unique per bot and Feishu event id) and
    the durable work item of its answer."""

    __tablename__ = "feishu_bot_events"
    __table_args__ = (
        UniqueConstraint("bot_id", "event_id", name="uq_feishu_bot_events_bot_event"),
        Index(
            "ix_feishu_bot_events_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('received', 'calling', 'answered')"),
        ),
        Index("ix_feishu_bot_events_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    bot_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("feishu_bots.id", ondelete="CASCADE"), nullable=False
    )
    event_id: Mapped[str] = mapped_column(String(128), nullable=False)
    message_id: Mapped[str] = mapped_column(String(128), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default=RECEIVED)
    # the user's text and the answer, encrypted, and only until the reply is sent
    prompt_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    answer_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reply_attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
