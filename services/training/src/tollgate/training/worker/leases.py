"""The worker's SQL: lease the next job (FOR UPDATE SKIP LOCKED, so workers never take the same
job), renew a lease, take over jobs whose worker stopped renewing, end jobs whose process died."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.training.domain import CANCELLED, FAILED, QUEUED, RUNNING, VALIDATING
from tollgate.training.files.models import TrainingFile
from tollgate.training.jobs.ending import finish
from tollgate.training.jobs.models import Job, JobEvent


@dataclass(frozen=True, slots=True)
class Lease:
    job_id: str
    attempt: int
    resources: dict[str, object]
    resumed: bool  # taken over from a worker that stopped renewing its lease


class Leases:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], owner: str, *, ttl_s: float, max_attempts: int
    ) -> None:
        self.sessions = sessions
        self.owner = owner
        self.ttl = timedelta(seconds=ttl_s)
        self.max_attempts = max_attempts

    async def next(self) -> Lease | None:
        """The oldest job waiting (queued, or abandoned by its worker), leased to this worker; None
        when none waits."""
        now = datetime.now(UTC)
        async with self.sessions.begin() as session:
            stmt = (
                select(Job)
                .where(
                    or_(
                        Job.status == QUEUED,
                        (Job.status == RUNNING) & (Job.lease_expires_at < now) & Job.settled_at.is_(None),
                    )
                )
                .order_by(Job.created_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            job = (await session.execute(stmt)).scalar_one_or_none()
            if job is None:
                return None
            resumed = job.status == RUNNING
            if resumed and job.attempt >= self.max_attempts:
                rows, updates = finish(
                    job,
                    FAILED,
                    error_code="worker_lost",
                    error_message=f"The job's worker stopped {job.attempt} times; giving up.",
                )
                session.add_all(rows)
                for stmt_ in updates:
                    await session.execute(stmt_)
                return None
            job.status = RUNNING
            job.attempt += 1
            job.lease_owner = self.owner
            job.lease_expires_at = now + self.ttl
            job.updated_at = func.now()
            if resumed:
                session.add(
                    JobEvent(
                        job_id=job.id,
                        level="warn",
                        message=f"Worker lost; attempt {job.attempt} resumes from the last checkpoint",
                    )
                )
            return Lease(job.id, job.attempt, dict(job.resources), resumed)

    async def validate_pending(self, limit: int = 20) -> int:
        """validating_files -> queued (or failed) for new jobs, whether or not a slot is free."""
        async with self.sessions.begin() as session:
            stmt = (
                select(Job)
                .where(Job.status == VALIDATING)
                .order_by(Job.created_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            jobs = list((await session.execute(stmt)).scalars())
            for job in jobs:
                await self._validate(session, job)
            return len(jobs)

    async def _validate(self, session: AsyncSession, job: Job) -> bool:
        """validating_files -> queued: the files are still there (they cannot be deleted meanwhile)."""
        ids = [i for i in (job.training_file_id, job.validation_file_id) if i]
        found = (
            await session.execute(
                select(TrainingFile.id).where(TrainingFile.id.in_(ids), TrainingFile.deleted_at.is_(None))
            )
        ).all()
        if len(found) != len(ids):
            rows, updates = finish(
                job, FAILED, error_code="invalid_file", error_message="A file of the job is gone."
            )
            session.add_all(rows)
            for stmt in updates:
                await session.execute(stmt)
            return False
        job.status = QUEUED
        session.add(JobEvent(job_id=job.id, message="Validating training file"))
        session.add(JobEvent(job_id=job.id, message="Files validated, moving job to queued state"))
        return True

    async def renew(self, job_id: str, attempt: int) -> str | None:
        """Extends our lease; returns the job's status, or None when the job is no longer ours.
        One UPDATE ... RETURNING, not a locked read of the whole row then an update: it runs every
        second for each running job, on the cores the job trains on."""
        stmt = (
            update(Job)
            .where(
                Job.id == job_id,
                Job.attempt == attempt,
                Job.lease_owner == self.owner,
                Job.settled_at.is_(None),
            )
            .values(lease_expires_at=datetime.now(UTC) + self.ttl)
            .returning(Job.status)
            .execution_options(synchronize_session=False)  # a fresh session: nothing to refresh
        )
        async with self.sessions.begin() as session:
            return (await session.execute(stmt)).scalar_one_or_none()

    async def hand_back(self, job_id: str, attempt: int) -> None:
        """Our lease ends now (the worker is stopping): the next worker resumes the job at once."""
        async with self.sessions.begin() as session:
            job = await session.get(Job, job_id, with_for_update=True)
            if job is not None and job.attempt == attempt and job.lease_owner == self.owner:
                job.lease_expires_at = datetime.now(UTC)

    async def ended_without_settling(self, job_id: str, attempt: int, exit_code: int | None) -> str | None:
        """After our job process exited: settles the job if the process could not (it was killed,
        or crashed hard). A cancelled job is settled as cancelled; one that died on its own is
        given back for another attempt while attempts remain. Returns what happened, or None."""
        async with self.sessions.begin() as session:
            job = await session.get(Job, job_id, with_for_update=True)
            if job is None or job.attempt != attempt or job.settled_at is not None:
                return None
            if job.status == CANCELLED:
                outcome = CANCELLED
                rows, updates = finish(job, CANCELLED)
            elif job.attempt < self.max_attempts:
                job.lease_expires_at = datetime.now(UTC)  # leasable again at once, resumed
                session.add(
                    JobEvent(
                        job_id=job.id, level="warn", message=f"The job process exited ({exit_code}); retrying"
                    )
                )
                return "retry"
            else:
                outcome = FAILED
                rows, updates = finish(
                    job,
                    FAILED,
                    error_code="job_process_died",
                    error_message=f"The training process exited with code {exit_code} on every attempt.",
                )
            session.add_all(rows)
            for stmt in updates:
                await session.execute(stmt)
            return outcome

    async def settle_abandoned_cancels(self) -> int:
        """Cancelled jobs whose worker died before their process stopped: settled here."""
        now = datetime.now(UTC)
        async with self.sessions.begin() as session:
            stmt = (
                select(Job)
                .where(Job.status == CANCELLED, Job.settled_at.is_(None), Job.lease_expires_at < now)
                .limit(20)
                .with_for_update(skip_locked=True)
            )
            jobs = list((await session.execute(stmt)).scalars())
            for job in jobs:
                rows, updates = finish(job, CANCELLED)
                session.add_all(rows)
                for stmt_ in updates:
                    await session.execute(stmt_)
            return len(jobs)
