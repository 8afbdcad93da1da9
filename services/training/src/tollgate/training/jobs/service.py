"""Job rules shared by both surfaces: resolve the base and the files, estimate the cost, hold it
(402 before anything is stored or computed), queue the job; cancel it. Never commits."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from opentelemetry import propagate
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.common.auth_client import Principal
from tollgate.common.errors import InvalidRequest, NotFound
from tollgate.training.billing import Holds
from tollgate.training.domain import (
    CANCELLED,
    LANGUAGE_MODEL,
    MODEL_FAILED,
    MODEL_REGISTERED,
    MODEL_TRAINING,
    RUNNING,
    SUFFIX_RE,
    TERMINAL,
    VALIDATING,
    Hyperparameters,
    Resources,
    cost_micros,
    fine_tuned_name,
    job_hold_id,
    new_id,
)
from tollgate.training.errors import Conflict
from tollgate.training.files.models import TrainingFile
from tollgate.training.files.repository import FileRepository
from tollgate.training.jobs.ending import finish
from tollgate.training.jobs.models import Job
from tollgate.training.jobs.repository import JobRepository
from tollgate.training.registry.models import RegistryModel
from tollgate.training.registry.repository import RegistryRepository

_RETRAINABLE = frozenset({MODEL_REGISTERED, MODEL_FAILED, "cancelled"})


@dataclass(frozen=True, slots=True)
class JobRequest:
    """A job as either surface asks for it (hyperparameters resolved, "auto" decided)."""

    surface: str
    model_ref: str  # a base model (name or id) or, on /training/jobs, an organisation's model id
    training_file_id: str
    validation_file_id: str | None
    hyperparameters: Hyperparameters
    resources: Resources
    suffix: str | None = None
    seed: int | None = None
    metadata: dict[str, Any] | None = None


def job_not_found(job_id: str) -> NotFound:
    return NotFound(f"Fine-tuning job {job_id!r} not found.", param="job_id", code="job_not_found")


class JobService:
    def __init__(self, holds: Holds) -> None:
        self.holds = holds

    async def create(self, session: AsyncSession, principal: Principal, req: JobRequest) -> Job:
        registry, files, jobs = RegistryRepository(session), FileRepository(session), JobRepository(session)
        base, target = await self._resolve_model(registry, principal, req.model_ref)
        if req.suffix is not None and not SUFFIX_RE.match(req.suffix):
            raise InvalidRequest("suffix: 1-40 letters, digits, '_' or '-'.", param="suffix")
        training = await self._file(files, principal.org_id, req.training_file_id, "training_file")
        validation = None
        if req.validation_file_id:
            validation = await self._file(files, principal.org_id, req.validation_file_id, "validation_file")
        job_id = new_id("ftjob")
        suffix = req.suffix or (_suffix_of(target.name) if target is not None else None)
        name = fine_tuned_name(base.name, principal.org_id, suffix, job_id)
        estimated = training.estimated_tokens * req.hyperparameters.n_epochs
        amount = cost_micros(estimated, base.price_training_micros)
        if target is None:
            target = await registry.add(
                RegistryModel(
                    id=new_id("model"),
                    org_id=principal.org_id,
                    name=name,
                    type=LANGUAGE_MODEL,
                    status=MODEL_TRAINING,
                    base_model_id=base.id,
                    config={"base_model": base.name},
                    metrics={},
                )
            )
        target.status = MODEL_TRAINING
        target.job_id = job_id
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        job = await jobs.add(
            Job(
                id=job_id,
                org_id=principal.org_id,
                key_id=principal.key_id,
                user_id=principal.user_id,
                surface=req.surface,
                base_model=base.name,
                base_model_id=base.id,
                registry_model_id=target.id,
                fine_tuned_model=name,
                suffix=suffix,
                training_file_id=training.id,
                validation_file_id=validation.id if validation else None,
                hyperparameters=req.hyperparameters.to_json(),
                resources=req.resources.to_json(),
                seed=req.seed if req.seed is not None else secrets.randbelow(2**31),
                metadata_=req.metadata,
                status=VALIDATING,
                estimated_tokens=estimated,
                price_micros_per_1m=base.price_training_micros,
                hold_id=job_hold_id(job_id),
                hold_micros=0,
                traceparent=carrier.get("traceparent"),
            )
        )
        jobs.add_event(
            job_id, "Created fine-tuning job", data={"estimated_tokens": estimated, "hold_micros": amount}
        )
        await session.flush()
        # Last: a refusal (402/429) rolls back everything above, so nothing is stored or computed.
        job.hold_micros = await self.holds.hold(principal, job.hold_id, amount, base.name)
        return job

    async def _resolve_model(
        self, registry: RegistryRepository, principal: Principal, ref: str
    ) -> tuple[RegistryModel, RegistryModel | None]:
        base = await registry.find_base(ref)
        if base is not None:
            return base, None
        own = await registry.get_visible(principal.org_id, ref, lock=True)
        if own is None or own.org_id is None or own.base_model_id is None:
            raise NotFound(
                f"Model {ref!r} not found or not trainable.", param="model", code="model_not_found"
            )
        if own.status not in _RETRAINABLE:
            raise Conflict(
                f"Model {ref!r} is {own.status}; register a new model to train again.",
                param="model",
                code="model_in_use",
            )
        base = await registry.get_visible(principal.org_id, own.base_model_id)
        if base is None:
            raise NotFound(f"The base model of {ref!r} is gone.", param="model", code="model_not_found")
        return base, own

    async def _file(self, files: FileRepository, org_id: str, file_id: str, param: str) -> TrainingFile:
        found = await files.get(org_id, file_id, lock="share")
        if found is None:
            raise NotFound(f"File {file_id!r} not found.", param=param, code="file_not_found")
        if found.purpose != "fine-tune":
            raise InvalidRequest(f"File {file_id!r} is not a 'fine-tune' file.", param=param)
        return found

    async def get(self, session: AsyncSession, org_id: str, job_id: str) -> Job:
        job = await JobRepository(session).get(org_id, job_id)
        if job is None:
            raise job_not_found(job_id)
        return job

    async def cancel(self, session: AsyncSession, org_id: str, job_id: str) -> Job:
        """A job that is not running ends (and is settled) now; a running one is marked cancelled and
        its process stops within seconds, settling what it trained."""
        jobs = JobRepository(session)
        job = await jobs.get(org_id, job_id, lock=True)
        if job is None:
            raise job_not_found(job_id)
        if job.status in TERMINAL:
            raise Conflict(
                f"Job {job_id} has already ended ({job.status}).", param="job_id", code="job_not_cancellable"
            )
        if job.status == RUNNING:
            job.status = CANCELLED
            job.cancel_requested = True
            jobs.add_event(job_id, "Job cancellation requested")
        else:
            rows, updates = finish(job, CANCELLED)
            session.add_all(rows)
            for stmt in updates:
                await session.execute(stmt)
        await session.flush()
        return job


def _suffix_of(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)[:40]
