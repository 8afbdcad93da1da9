"""How a job ends, whoever ends it (the API for a job that never ran, the job process, the worker
that saw its process die, another worker after a lost lease): one place, so the job is settled once.

`finish` works on a loaded (locked) job row and returns what the caller's session must also write:
the outbox records (TrainingCompleted, the settling UsageRecorded) and the registry update. It does
nothing and returns nothing when the job was settled already.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Update, update

from tollgate.training.domain import CANCELLED, FAILED, SUCCEEDED, TERMINAL, cost_micros
from tollgate.training.events import messages
from tollgate.training.events.models import OutboxRecord
from tollgate.training.jobs.models import Job, JobEvent
from tollgate.training.registry.models import RegistryModel

_REGISTRY_STATUS = {FAILED: "failed", CANCELLED: "cancelled"}


def finish(
    job: Job, status: str, *, error_code: str = "", error_message: str = ""
) -> tuple[list[OutboxRecord | JobEvent], list[Update]]:
    """Ends the job with `status` (kept "cancelled" if a cancel came first) and settles it."""
    if job.settled_at is not None:
        return [], []
    if job.status == CANCELLED:
        status = CANCELLED
    now = datetime.now(UTC)
    job.status = status
    job.finished_at = job.finished_at or now
    job.settled_at = now
    job.lease_owner = None
    job.lease_expires_at = None
    job.estimated_finish = None
    job.cost_micros = cost_micros(job.trained_tokens, job.price_micros_per_1m)
    if status == FAILED:
        job.error = {
            "code": error_code or "training_failed",
            "message": error_message or "Training failed.",
            "param": None,
        }
    rows: list[OutboxRecord | JobEvent] = [*messages.settlement(job, status, error_code, error_message)]
    rows.append(_event(job, status, error_message))
    updates: list[Update] = []
    if status in _REGISTRY_STATUS:
        updates.append(
            update(RegistryModel)
            .where(RegistryModel.id == job.registry_model_id, RegistryModel.deleted_at.is_(None))
            .values(status=_REGISTRY_STATUS[status], updated_at=now)
        )
    return rows, updates


def _event(job: Job, status: str, error_message: str) -> JobEvent:
    data: dict[str, Any] = {"trained_tokens": job.trained_tokens, "cost_micros": job.cost_micros}
    if status == SUCCEEDED:
        return JobEvent(job_id=job.id, message="The job has successfully completed", data=data)
    if status == CANCELLED:
        return JobEvent(job_id=job.id, message="The job has been cancelled", data=data)
    return JobEvent(job_id=job.id, level="error", message=f"The job failed: {error_message}", data=data)


def is_terminal(status: str) -> bool:
    return status in TERMINAL
