"""Queries on organisations, memberships and invitations."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.auth.accounts.models import Membership, Organization, User
from tollgate.auth.orgs.models import Invitation

# An organisation's member list and a person's organisation list are bounded in one answer.
MAX_LISTED = 1000


class OrgRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, *rows: Organization | Membership | Invitation) -> None:
        for row in rows:  # one flush each: an organisation before the rows that reference it
            self.session.add(row)
            await self.session.flush()

    async def lock(self, org_id: str) -> Organization | None:
        """The organisation row locked: membership changes of one organisation happen one at a
        time, so two concurrent demotions cannot both see "another owner remains"."""
        stmt = select(Organization).where(Organization.id == org_id).with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get(self, org_id: str) -> Organization | None:
        return await self.session.get(Organization, org_id)

    async def membership(self, org_id: str, user_id: str) -> Membership | None:
        # Always read from the database: under the organisation's lock the role must be current.
        stmt = (
            select(Membership)
            .where(Membership.org_id == org_id, Membership.user_id == user_id)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def owners(self, org_id: str) -> int:
        stmt = select(func.count()).where(Membership.org_id == org_id, Membership.role == "owner")
        return int((await self.session.execute(stmt)).scalar_one())

    async def of_user(self, user_id: str) -> Sequence[tuple[Organization, str]]:
        stmt = (
            select(Organization, Membership.role)
            .join(Membership, Membership.org_id == Organization.id)
            .where(Membership.user_id == user_id)
            .order_by(Organization.personal.desc(), Organization.created_at, Organization.id)
            .limit(MAX_LISTED)
        )
        return [(org, role) for org, role in (await self.session.execute(stmt)).all()]

    async def members(self, org_id: str) -> Sequence[tuple[Membership, User]]:
        stmt = (
            select(Membership, User)
            .join(User, User.id == Membership.user_id)
            .where(Membership.org_id == org_id)
            .order_by(Membership.created_at, Membership.user_id)
            .limit(MAX_LISTED)
        )
        return [(m, u) for m, u in (await self.session.execute(stmt)).all()]

    async def remove(self, membership: Membership) -> None:
        await self.session.delete(membership)
        await self.session.flush()

    async def invitation_by_hash(self, token_hashes: Sequence[str]) -> Invitation | None:
        stmt = select(Invitation).where(Invitation.token_hash.in_(token_hashes)).with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def invitation(self, org_id: str, invitation_id: int) -> Invitation | None:
        stmt = (
            select(Invitation)
            .where(Invitation.id == invitation_id, Invitation.org_id == org_id)
            .with_for_update()
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def pending_invitations(self, org_id: str, now: datetime) -> Sequence[Invitation]:
        stmt = (
            select(Invitation)
            .where(
                Invitation.org_id == org_id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > now,
            )
            .order_by(Invitation.id.desc())
            .limit(MAX_LISTED)
        )
        return (await self.session.execute(stmt)).scalars().all()
