"""Chat records (docs/chat-records.md): a session per (org, key, client session id), threads of
one conversation inside it, and an entry per recorded request. Content columns (`*_enc`) hold
SecretBox ciphertexts only; rows of "metadata" organisations leave them NULL."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Identity, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from tollgate.analytics.db import Base

TS = DateTime(timezone=True)


class ChatSession(Base):
    __tablename__ = "chat_sessions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    org_id: Mapped[str] = mapped_column(Text)
    key_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[str] = mapped_column(Text)
    external_id: Mapped[str] = mapped_column(Text)  # X-Session-Id, or the request id without one
    title_enc: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(TS)
    updated_at: Mapped[dt.datetime] = mapped_column(TS)


class ChatThread(Base):
    __tablename__ = "chat_threads"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("chat_sessions.id", ondelete="CASCADE"))
    org_id: Mapped[str] = mapped_column(Text)
    key_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[str] = mapped_column(Text)
    thread_key: Mapped[str] = mapped_column(Text)
    title_enc: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(TS)
    updated_at: Mapped[dt.datetime] = mapped_column(TS)


class ChatEntry(Base):
    __tablename__ = "chat_entries"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("chat_threads.id", ondelete="CASCADE"))
    org_id: Mapped[str] = mapped_column(Text)
    event_id: Mapped[str] = mapped_column(Text, unique=True)
    model: Mapped[str] = mapped_column(Text)
    stream: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(Text)
    tokens_in: Mapped[int] = mapped_column(BigInteger)
    tokens_out: Mapped[int] = mapped_column(BigInteger)
    messages_enc: Mapped[str | None] = mapped_column(Text)
    answer_enc: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(TS)


class ChatRetention(Base):
    """The organisation's retention, as its latest record carried it (auth owns the setting)."""

    __tablename__ = "chat_retention"

    org_id: Mapped[str] = mapped_column(Text, primary_key=True)
    retention_days: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(TS)
