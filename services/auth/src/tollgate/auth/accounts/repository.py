"""Queries on organisations and users."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.auth.accounts.models import Organization, User


class AccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, *rows: Organization | User) -> None:
        self.session.add_all(rows)
        await self.session.flush()

    async def ensure_organization(self, org_id: str, name: str, *, personal: bool) -> None:
        """Idempotent and race-free when several replicas start at once."""
        stmt = (
            insert(Organization)
            .values(id=org_id, name=name, personal=personal)
            .on_conflict_do_nothing(index_elements=[Organization.id])
        )
        await self.session.execute(stmt)

    async def email_of(self, user_id: str | None) -> str | None:
        if user_id is None:
            return None
        result = await self.session.execute(select(User.email).where(User.id == user_id))
        return result.scalar_one_or_none()
