"""The guard's queries on api_keys (the secret column)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.auth.keys.models import ApiKey


class GuardRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def secret_hash(self, key_id: int) -> tuple[str | None, str | None]:
        """The stored secret hash and the id of the pepper that made it."""
        stmt = select(ApiKey.secret_hash, ApiKey.secret_pepper_id).where(ApiKey.id == key_id)
        row = (await self.session.execute(stmt)).first()
        return (row.secret_hash, row.secret_pepper_id) if row is not None else (None, None)

    async def rehash_secret(self, key_id: int, *, old_hash: str, new_hash: str, pepper_id: str) -> None:
        """Conditional on the hash it was checked against: a secret rotated meanwhile is kept."""
        stmt = (
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.secret_hash == old_hash)
            .values(secret_hash=new_hash, secret_pepper_id=pepper_id)
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(stmt)

    async def active_key_for_update(self, key_id: int) -> ApiKey | None:
        stmt = select(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)).with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()
