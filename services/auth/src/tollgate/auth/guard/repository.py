"""The guard's queries: api_keys' secret column, and the first report of each idempotent log-usage."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.auth.guard.models import GuardUsageReport
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

    async def first_report(self, event_id: str, key_id: int, usage_event: bytes) -> bytes:
        """Keeps `usage_event` as this event id's report unless one is kept already; returns the
        kept one (the first attempt's). A concurrent first attempt is waited for: the insert blocks
        on its uncommitted row, and the select after it (a new snapshot) sees it committed."""
        stmt = (
            insert(GuardUsageReport)
            .values(event_id=event_id, key_id=key_id, usage_event=usage_event)
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(GuardUsageReport.usage_event)
        )
        inserted = (await self.session.execute(stmt)).scalar_one_or_none()
        if inserted is not None:
            return inserted
        kept = select(GuardUsageReport.usage_event).where(GuardUsageReport.event_id == event_id)
        return (await self.session.execute(kept)).scalar_one()
