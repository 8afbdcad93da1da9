"""What the job process writes to the training database, each in its own short transaction and
each fenced: only while the job is still this attempt's (a worker that lost its lease must not
write over its successor) and not yet settled. A write that finds the job cancelled stops the loop.
Synchronous: during training the writes come from the progress writer's thread
(trainer/progress.py), so the training thread does not wait for them."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tollgate.training.domain import MODEL_DEPLOYED, RUNNING, SUCCEEDED, Hyperparameters, new_id
from tollgate.training.events import messages
from tollgate.training.files.models import TrainingFile
from tollgate.training.jobs.ending import finish
from tollgate.training.jobs.models import Checkpoint, Job, JobEvent
from tollgate.training.registry.models import RegistryModel
from tollgate.training.trainer.checkpoint import LoopPosition
from tollgate.training.trainer.loop import StepReport


@dataclass(frozen=True, slots=True)
class JobContext:
    job_id: str
    attempt: int
    org_id: str
    base_model: str
    base_source: Path
    chat_format: str
    training_path: Path
    validation_path: Path | None
    hyperparameters: Hyperparameters
    seed: int
    cpu_cores: float
    traceparent: str | None


@dataclass(frozen=True, slots=True)
class RecordedStep:
    """A step as the training thread saw it end. Its wall-clock time is its event's time and its
    progress record's, so they tell when the step ended however late a batch of them is written."""

    report: StepReport
    at: datetime
    monotonic: float

    @classmethod
    def now(cls, report: StepReport) -> RecordedStep:
        return cls(report, datetime.now(UTC), time.monotonic())


class NotOurs(Exception):
    """The job moved on (another attempt owns it, or it is settled): stop without writing."""


class JobStore:
    def __init__(self, engine: Engine, job_id: str, attempt: int) -> None:
        self.engine = engine
        self.job_id = job_id
        self.attempt = attempt
        self._began = time.monotonic()
        self._first_step: int | None = None

    @contextmanager
    def _job(self) -> Iterator[tuple[Session, Job]]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            job = session.get(Job, self.job_id, with_for_update=True)
            if job is None or job.attempt != self.attempt or job.settled_at is not None:
                raise NotOurs(self.job_id)
            yield session, job

    def load(self) -> JobContext:
        with self._job() as (session, job):
            base = session.get(RegistryModel, job.base_model_id)
            training = session.get(TrainingFile, job.training_file_id)
            validation = session.get(TrainingFile, job.validation_file_id) if job.validation_file_id else None
            if base is None or base.source is None or training is None:
                raise RuntimeError("the job's base model or training file is gone")
            return JobContext(
                job_id=job.id,
                attempt=job.attempt,
                org_id=job.org_id,
                base_model=job.base_model,
                base_source=Path(base.source),
                chat_format=base.chat_format or "gemma",
                training_path=Path(training.storage_path),
                validation_path=Path(validation.storage_path) if validation else None,
                hyperparameters=Hyperparameters.from_json(job.hyperparameters),
                seed=job.seed,
                cpu_cores=float(job.resources.get("cpu_cores", 0)),
                traceparent=job.traceparent,
            )

    def note(self, message: str, data: dict[str, Any] | None = None) -> None:
        with self._job() as (session, _job):
            session.add(JobEvent(job_id=self.job_id, message=message, data=data))

    def latest_checkpoint(self) -> tuple[Path, int] | None:
        with Session(self.engine) as session:
            row = session.execute(
                select(Checkpoint.path, Checkpoint.step)
                .where(Checkpoint.job_id == self.job_id)
                .order_by(Checkpoint.step.desc())
                .limit(1)
            ).first()
        if row is None or not Path(row[0]).is_dir():
            return None
        return Path(row[0]), int(row[1])

    def started(
        self, total_steps: int, resumed: LoopPosition | None, device: str, threads: int | None = None
    ) -> bool:
        with self._job() as (session, job):
            if job.status != RUNNING:
                return False
            job.total_steps = total_steps
            job.device = device
            job.started_at = job.started_at or datetime.now(UTC)
            if resumed is not None:
                job.step, job.epoch, job.trained_tokens = resumed.step, resumed.epoch, resumed.trained_tokens
                message = f"Resumed from the checkpoint at step {resumed.step} (attempt {self.attempt})"
            else:
                job.step, job.epoch, job.trained_tokens = 0, 0, 0
                message = "Fine-tuning job started"
            job.updated_at = func.now()
            data: dict[str, Any] = {"total_steps": total_steps, "device": device}
            if threads is not None:
                data["threads"] = threads  # torch's, to compare with a baseline's (bench/training.py)
            session.add(JobEvent(job_id=job.id, message=message, data=data))
            session.add(messages.started(job, resumed_from_step=resumed.step if resumed else 0))
            return True

    def steps(self, recorded: Sequence[RecordedStep]) -> bool:
        """Records steps in one transaction: the job row at the last of them, and for each a
        `metrics` event and a TrainingProgress record. False, writing nothing, when the job is no
        longer running (cancelled)."""
        if not recorded:
            return True
        if self._first_step is None:
            first = recorded[0]
            self._first_step = first.report.step - 1
            self._began = first.monotonic - first.report.seconds
        with self._job() as (session, job):
            if job.status != RUNNING:
                return False
            for item in recorded:
                report = item.report
                job.step, job.epoch, job.loss = report.step, report.epoch, report.loss
                job.trained_tokens = report.trained_tokens
                job.tokens_per_second = report.tokens_per_second
                data = {
                    "step": report.step,
                    "total_steps": report.total_steps,
                    "epoch": report.epoch,
                    "train_loss": report.loss,
                    "learning_rate": report.learning_rate,
                    "tokens_per_second": report.tokens_per_second,
                    "trained_tokens": report.trained_tokens,
                    "step_seconds": report.seconds,
                }
                message = f"Step {report.step}/{report.total_steps}: training loss={report.loss:.4f}"
                session.add(
                    JobEvent(job_id=job.id, type="metrics", message=message, data=data, created_at=item.at)
                )
                at_ms = int(item.at.timestamp() * 1000)
                session.add(messages.progress(job, learning_rate=report.learning_rate, at_unix_ms=at_ms))
            last = recorded[-1]
            per_step = (last.monotonic - self._began) / max(last.report.step - self._first_step, 1)
            job.estimated_finish = last.at + timedelta(
                seconds=per_step * (last.report.total_steps - last.report.step)
            )
            job.updated_at = func.now()
            return True

    def checkpoint(self, position: LoopPosition, path: Path, metrics: dict[str, float]) -> None:
        with self._job() as (session, job):
            session.add(
                Checkpoint(
                    id=new_id("ftckpt"),
                    job_id=job.id,
                    step=position.step,
                    epoch=position.epoch,
                    trained_tokens=position.trained_tokens,
                    path=str(path),
                    metrics=metrics,
                )
            )
            session.add(JobEvent(job_id=job.id, message=f"Checkpoint created at step {position.step}"))

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        with self._job() as (session, job):
            if "valid_loss" in metrics:
                job.valid_loss = metrics["valid_loss"]
                job.valid_accuracy = metrics.get("valid_mean_token_accuracy")
            session.add(JobEvent(job_id=job.id, type="metrics", message=f"Epoch {epoch} done", data=metrics))

    def succeed(self, adapter: Path, metrics: dict[str, float]) -> None:
        """Succeeded, settled, the model ready and deployed (ModelDeployed) in one transaction."""
        with self._job() as (session, job):
            if job.status != RUNNING:
                self._end(session, job, job.status)  # cancelled at the last moment: settle as such
                return
            model = session.get(RegistryModel, job.registry_model_id, with_for_update=True)
            self._end(session, job, SUCCEEDED)
            if model is None or model.deleted_at is not None:
                return
            model.status = MODEL_DEPLOYED
            model.served_name = job.fine_tuned_model
            model.adapter_path = str(adapter)
            model.size_bytes = adapter.stat().st_size
            model.metrics = {"loss": job.loss, **metrics}
            model.updated_at = func.now()
            session.add(
                JobEvent(
                    job_id=job.id,
                    message=f"New fine-tuned model created and deployed: {job.fine_tuned_model}",
                )
            )
            session.add(messages.deployed(job, model.id))

    def end(self, status: str, error_code: str = "", error_message: str = "") -> None:
        with self._job() as (session, job):
            self._end(session, job, status, error_code, error_message)

    @staticmethod
    def _end(session: Session, job: Job, status: str, error_code: str = "", error_message: str = "") -> None:
        rows, updates = finish(job, status, error_code=error_code, error_message=error_message)
        session.add_all(rows)
        for stmt in updates:
            session.execute(stmt)

    def status(self) -> str | None:
        with Session(self.engine) as session:
            return session.execute(select(Job.status).where(Job.id == self.job_id)).scalar_one_or_none()
