"""Every SQL query of training files."""

from __future__ import annotations

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.training.domain import ACTIVE
from tollgate.training.files.models import TrainingFile
from tollgate.training.jobs.models import Job


class FileRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, file: TrainingFile) -> TrainingFile:
        self.session.add(file)
        await self.session.flush()
        await self.session.refresh(file)
        return file

    async def get(self, org_id: str, file_id: str, *, lock: str | None = None) -> TrainingFile | None:
        """`lock` "update" (deleting) or "share" (a job starting to use it): the two exclude each other."""
        stmt = select(TrainingFile).where(
            TrainingFile.id == file_id, TrainingFile.org_id == org_id, TrainingFile.deleted_at.is_(None)
        )
        if lock:
            stmt = stmt.with_for_update(read=lock == "share")
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def page(
        self, org_id: str, purpose: str | None, after: str | None, limit: int, newest_first: bool
    ) -> list[TrainingFile]:
        stmt = select(TrainingFile).where(TrainingFile.org_id == org_id, TrainingFile.deleted_at.is_(None))
        if purpose:
            stmt = stmt.where(TrainingFile.purpose == purpose)
        order = (TrainingFile.created_at.desc(), TrainingFile.id.desc())
        if not newest_first:
            order = (TrainingFile.created_at.asc(), TrainingFile.id.asc())
        if after:
            cursor = await self.get(org_id, after)
            if cursor is not None:
                key = (TrainingFile.created_at, TrainingFile.id)
                marker = (cursor.created_at, cursor.id)
                stmt = stmt.where(
                    tuple_(*key) < tuple_(*marker) if newest_first else tuple_(*key) > tuple_(*marker)
                )
        return list((await self.session.execute(stmt.order_by(*order).limit(limit))).scalars())

    async def in_use(self, file_id: str) -> bool:
        """A job that has not ended yet reads the file."""
        stmt = select(Job.id).where(
            (Job.training_file_id == file_id) | (Job.validation_file_id == file_id), Job.status.in_(ACTIVE)
        )
        return (await self.session.execute(stmt.limit(1))).first() is not None

    async def mark_deleted(self, file_id: str) -> None:
        await self.session.execute(
            update(TrainingFile).where(TrainingFile.id == file_id).values(deleted_at=func.now())
        )
