"""SQL of the job API: jobs of an organisation, their events and checkpoints."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.training.jobs.models import Checkpoint, Job, JobEvent


class JobRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, job: Job) -> Job:
        self.session.add(job)
        await self.session.flush()
        await self.session.refresh(job)
        return job

    def add_event(
        self, job_id: str, message: str, *, level: str = "info", data: dict[str, Any] | None = None
    ) -> None:
        self.session.add(JobEvent(job_id=job_id, message=message, level=level, type="message", data=data))

    async def get(self, org_id: str, job_id: str, *, lock: bool = False) -> Job | None:
        stmt = select(Job).where(Job.id == job_id, Job.org_id == org_id)
        if lock:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def page(
        self, org_id: str, after: str | None, limit: int, surfaces: tuple[str, ...] | None = None
    ) -> list[Job]:
        """Newest first; `after` is the id of the last job of the previous page."""
        stmt = select(Job).where(Job.org_id == org_id)
        if surfaces:
            stmt = stmt.where(Job.surface.in_(surfaces))
        if after:
            cursor = await self.get(org_id, after)
            if cursor is not None:
                stmt = stmt.where(tuple_(Job.created_at, Job.id) < tuple_(cursor.created_at, cursor.id))
        stmt = stmt.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def events(self, job_id: str, after: int | None, limit: int) -> list[JobEvent]:
        """Newest first (OpenAI's order); `after` is an event id of the previous page."""
        stmt = select(JobEvent).where(JobEvent.job_id == job_id)
        if after is not None:
            stmt = stmt.where(JobEvent.id < after)
        return list((await self.session.execute(stmt.order_by(JobEvent.id.desc()).limit(limit))).scalars())

    async def checkpoints(self, job_id: str, after: str | None, limit: int) -> list[Checkpoint]:
        stmt = select(Checkpoint).where(Checkpoint.job_id == job_id)
        if after:
            marker = (
                await self.session.execute(select(Checkpoint.step).where(Checkpoint.id == after))
            ).scalar()
            if marker is not None:
                stmt = stmt.where(Checkpoint.step < marker)
        return list(
            (await self.session.execute(stmt.order_by(Checkpoint.step.desc()).limit(limit))).scalars()
        )
