"""Every query on groups, and the group references held by keys and users."""

from __future__ import annotations

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.auth.accounts.models import User
from tollgate.auth.grants.models import SUBJECT_GROUP, ModelGrant
from tollgate.auth.groups.models import Group
from tollgate.auth.keys.models import ApiKey


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class GroupRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, group_id: int, *, for_update: bool = False) -> Group | None:
        stmt = select(Group).where(Group.id == group_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_by_name(self, name: str, *, for_update: bool = False) -> Group | None:
        stmt = select(Group).where(Group.name == name)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def add(self, group: Group) -> Group:
        self.session.add(group)
        await self.session.flush()
        await self.session.refresh(group)  # server defaults (created_at, description)
        return group

    async def page(self, q: str | None, *, limit: int, offset: int) -> tuple[list[Group], int]:
        conditions: list[ColumnElement[bool]] = []
        if q:
            pattern = f"%{_like_escape(q)}%"
            conditions.append(
                or_(Group.name.ilike(pattern, escape="\\"), Group.description.ilike(pattern, escape="\\"))
            )
        total = (await self.session.execute(select(func.count(Group.id)).where(*conditions))).scalar_one()
        rows = await self.session.execute(
            select(Group).where(*conditions).order_by(Group.id).limit(limit).offset(offset)
        )
        return list(rows.scalars().all()), int(total)

    async def active_key_count(self, group_id: int) -> int:
        stmt = select(func.count(ApiKey.id)).where(ApiKey.group_id == group_id, ApiKey.revoked_at.is_(None))
        return int((await self.session.execute(stmt)).scalar_one())

    async def detach_users(self, group_id: int) -> None:
        await self.session.execute(update(User).where(User.group_id == group_id).values(group_id=None))

    async def delete(self, group: Group) -> None:
        await self.session.execute(
            delete(ModelGrant).where(
                ModelGrant.subject_type == SUBJECT_GROUP, ModelGrant.subject_id == group.id
            )
        )
        await self.session.delete(group)
        await self.session.flush()
