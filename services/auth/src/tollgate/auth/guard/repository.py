"""The guard's queries on api_keys (the secret column)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.auth.keys.models import ApiKey


class GuardRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def secret_hash(self, key_id: int) -> str | None:
        stmt = select(ApiKey.secret_hash).where(ApiKey.id == key_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def active_key_for_update(self, key_id: int) -> ApiKey | None:
        stmt = select(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)).with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()
