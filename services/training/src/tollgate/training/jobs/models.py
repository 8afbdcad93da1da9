"""ORM tables of fine-tuning jobs, their events and checkpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tollgate.training.db import Base


class Job(Base):
    __tablename__ = "training_jobs"
    __table_args__ = (
        Index("ix_training_jobs_org_created", "org_id", "created_at"),
        # what workers lease: queued work, and running work whose lease may have expired
        Index(
            "ix_training_jobs_leasable",
            "status",
            "created_at",
            postgresql_where=text("status IN ('validating_files', 'queued', 'running')"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(64), nullable=False)
    key_id: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    user_id: Mapped[str] = mapped_column(String(64), nullable=False, server_default="")
    surface: Mapped[str] = mapped_column(String(16), nullable=False)  # openai | training | fine-tuning
    base_model: Mapped[str] = mapped_column(String(200), nullable=False)
    base_model_id: Mapped[str] = mapped_column(String(40), nullable=False)
    registry_model_id: Mapped[str] = mapped_column(String(40), nullable=False)
    fine_tuned_model: Mapped[str] = mapped_column(String(255), nullable=False)
    suffix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    training_file_id: Mapped[str] = mapped_column(String(40), nullable=False, index=True)
    validation_file_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    resources: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    seed: Mapped[int] = mapped_column(BigInteger, nullable=False)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB, nullable=True)
    # validating_files -> queued -> running -> succeeded | failed | cancelled
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    # Money: the estimated-cost hold placed at creation, settled once through usage.v1.
    estimated_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False)
    price_micros_per_1m: Mapped[int] = mapped_column(BigInteger, nullable=False)
    hold_id: Mapped[str] = mapped_column(String(64), nullable=False)
    hold_micros: Mapped[int] = mapped_column(BigInteger, nullable=False)
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cost_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Progress, written by the job process at every step.
    trained_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    step: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    total_steps: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    epoch: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    valid_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    valid_accuracy: Mapped[float | None] = mapped_column(Float, nullable=True)
    tokens_per_second: Mapped[float | None] = mapped_column(Float, nullable=True)
    device: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # Leasing: one worker at a time owns a running job; an expired lease is taken over.
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    traceparent: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    estimated_finish: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class JobEvent(Base):
    __tablename__ = "training_job_events"
    __table_args__ = (Index("ix_training_job_events_job", "job_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(40), ForeignKey("training_jobs.id", ondelete="CASCADE"))
    level: Mapped[str] = mapped_column(String(8), nullable=False, server_default="info")
    type: Mapped[str] = mapped_column(String(16), nullable=False, server_default="message")  # or metrics
    message: Mapped[str] = mapped_column(Text, nullable=False)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class Checkpoint(Base):
    __tablename__ = "training_checkpoints"
    __table_args__ = (UniqueConstraint("job_id", "step", name="uq_training_checkpoints_job_step"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(40), ForeignKey("training_jobs.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer, nullable=False)
    epoch: Mapped[int] = mapped_column(Integer, nullable=False)
    trained_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False)
    path: Mapped[str] = mapped_column(Text, nullable=False)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
