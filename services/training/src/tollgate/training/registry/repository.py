"""Every SQL query of the model registry."""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.training.domain import BASE_MODEL
from tollgate.training.registry.models import RegistryModel


class RegistryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _visible(self, org_id: str) -> list[ColumnElement[bool]]:
        return [
            RegistryModel.deleted_at.is_(None),
            or_(RegistryModel.org_id.is_(None), RegistryModel.org_id == org_id),
        ]

    async def get_visible(self, org_id: str, model_id: str, *, lock: bool = False) -> RegistryModel | None:
        stmt = select(RegistryModel).where(RegistryModel.id == model_id, *self._visible(org_id))
        if lock:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_served(self, org_id: str, served_name: str, *, lock: bool = False) -> RegistryModel | None:
        """The organisation's model served under `served_name` (its `ft:...` name once deployed)."""
        stmt = select(RegistryModel).where(
            RegistryModel.org_id == org_id,
            RegistryModel.served_name == served_name,
            RegistryModel.deleted_at.is_(None),
        )
        if lock:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt.limit(1))).scalar_one_or_none()

    async def find_base(self, ref: str) -> RegistryModel | None:
        """A base model by id or by name."""
        stmt = select(RegistryModel).where(
            RegistryModel.type == BASE_MODEL,
            RegistryModel.org_id.is_(None),
            RegistryModel.deleted_at.is_(None),
            or_(RegistryModel.id == ref, RegistryModel.name == ref),
        )
        return (await self.session.execute(stmt.limit(1))).scalar_one_or_none()

    async def name_taken(self, org_id: str | None, name: str) -> bool:
        stmt = select(RegistryModel.id).where(
            func.coalesce(RegistryModel.org_id, "") == (org_id or ""),
            RegistryModel.name == name,
            RegistryModel.deleted_at.is_(None),
        )
        return (await self.session.execute(stmt.limit(1))).first() is not None

    async def add(self, model: RegistryModel) -> RegistryModel:
        self.session.add(model)
        await self.session.flush()
        await self.session.refresh(model)
        return model

    async def page(self, org_id: str, page: int, per_page: int) -> tuple[list[RegistryModel], int]:
        where = self._visible(org_id)
        total = (
            await self.session.execute(select(func.count()).select_from(RegistryModel).where(*where))
        ).scalar_one()
        stmt = (
            select(RegistryModel)
            .where(*where)
            .order_by(RegistryModel.org_id.is_not(None), RegistryModel.created_at, RegistryModel.id)
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
        return list((await self.session.execute(stmt)).scalars()), int(total)
