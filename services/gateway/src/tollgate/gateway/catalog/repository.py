"""Every SQL query of the model catalog."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.gateway.catalog.models import Model


class ModelRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_live(self, model_id: int) -> Model | None:
        stmt = select(Model).where(Model.id == model_id, Model.deleted_at.is_(None))
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_live_by_name(self, name: str) -> Model | None:
        stmt = select(Model).where(Model.name == name, Model.deleted_at.is_(None))
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def name_taken(self, name: str, except_id: int | None) -> bool:
        stmt = select(Model.id).where(Model.name == name, Model.deleted_at.is_(None))
        if except_id is not None:
            stmt = stmt.where(Model.id != except_id)
        return (await self.session.execute(stmt.limit(1))).first() is not None

    async def add(self, **values: Any) -> Model:
        model = Model(**values)
        self.session.add(model)
        await self.session.flush()
        await self.session.refresh(model)
        return model

    async def update(self, model: Model, **values: Any) -> Model:
        for key, value in values.items():
            setattr(model, key, value)
        model.updated_at = func.now()
        await self.session.flush()
        await self.session.refresh(model)
        return model

    async def soft_delete(self, model_id: int) -> bool:
        stmt = (
            update(Model)
            .where(Model.id == model_id, Model.deleted_at.is_(None))
            .values(deleted_at=func.now(), updated_at=func.now())
        )
        result = await self.session.execute(stmt)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def list_live(self, q: str | None, limit: int, offset: int) -> tuple[list[Model], int]:
        where = [Model.deleted_at.is_(None)]
        if q:
            pattern = f"%{q}%"
            where.append(or_(Model.name.ilike(pattern), Model.provider.ilike(pattern)))
        total = (
            await self.session.execute(select(func.count()).select_from(Model).where(*where))
        ).scalar_one()
        stmt = select(Model).where(*where).order_by(Model.id).limit(limit).offset(offset)
        rows = list((await self.session.execute(stmt)).scalars())
        return rows, int(total)

    async def all_live(self) -> list[Model]:
        stmt = select(Model).where(Model.deleted_at.is_(None)).order_by(Model.id)
        return list((await self.session.execute(stmt)).scalars())

    async def version(self) -> tuple[int, datetime | None]:
        """Cheap change detector for the snapshot poller: any save or delete moves one of the two."""
        stmt = select(func.count(), func.max(Model.updated_at)).select_from(Model)
        count, latest = (await self.session.execute(stmt)).one()
        return int(count), latest
