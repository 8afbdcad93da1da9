"""Queries on organisations and users."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.auth.accounts.models import Membership, Organization, User


class AccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, *rows: Organization | User | Membership) -> None:
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

    async def user_with_password(self, email: str) -> User | None:
        """The user who signs in with this email (case-insensitive; uses uq_users_login_email)."""
        stmt = select(User).where(func.lower(User.email) == email.lower(), User.password_hash.is_not(None))
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_user(self, user_id: str) -> User | None:
        return await self.session.get(User, user_id)

    async def get_organization(self, org_id: str) -> Organization | None:
        return await self.session.get(Organization, org_id)

    async def role_in(self, org_id: str, user_id: str) -> str | None:
        stmt = select(Membership.role).where(Membership.org_id == org_id, Membership.user_id == user_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()
