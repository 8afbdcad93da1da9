"""Every query on audit_events."""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.auth.audit.models import AuditEvent


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, event: AuditEvent) -> None:
        self.session.add(event)
        await self.session.flush()

    async def page(
        self, *, action: str | None, actor_key_id: int | None, org_id: str | None, limit: int, offset: int
    ) -> tuple[list[AuditEvent], int]:
        conditions: list[ColumnElement[bool]] = []
        if org_id is not None:
            conditions.append(AuditEvent.org_id == org_id)
        if action:
            conditions.append(AuditEvent.action == action)
        if actor_key_id is not None:
            conditions.append(AuditEvent.actor_key_id == actor_key_id)
        total = (
            await self.session.execute(select(func.count()).select_from(AuditEvent).where(*conditions))
        ).scalar_one()
        rows = await self.session.execute(
            select(AuditEvent).where(*conditions).order_by(AuditEvent.id.desc()).limit(limit).offset(offset)
        )
        return list(rows.scalars().all()), int(total)
