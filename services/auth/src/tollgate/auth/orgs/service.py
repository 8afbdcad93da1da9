"""The rules for team organisations and their members, applied to the database. Gets its
collaborators in the constructor and the session per call; never commits (the request owns the
transaction). Role and removal decisions are the pure functions of `rules`; changes that alter
what a member's keys stand for return the `KeyChange`s to publish after the commit."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.auth.accounts.models import Membership, Organization, User
from tollgate.auth.accounts.repository import AccountRepository
from tollgate.auth.accounts.service import new_id
from tollgate.auth.keys.events import KeyChange
from tollgate.auth.keys.repository import KeyRepository
from tollgate.auth.keys.service import KeyService, utcnow
from tollgate.auth.keys.user_auth import KeyOwner
from tollgate.auth.orgs import rules
from tollgate.auth.orgs.errors import (
    AlreadyMember,
    InvitationExpired,
    InvitationForSomeoneElse,
    InvitationNotFound,
    MemberNotFound,
    NotAMember,
    UserNotFound,
)
from tollgate.auth.orgs.models import Invitation
from tollgate.auth.orgs.repository import OrgRepository
from tollgate.auth.sessions.errors import InvalidToken
from tollgate.auth.sessions.repository import SessionRepository
from tollgate.common.errors import Forbidden

INVITATION_PREFIX = "inv_"
MEMBER_REMOVED = "member_removed"  # a session's revoked_reason when its user left its organisation
MAX_INVITATION_LENGTH = 128


@dataclass(frozen=True, slots=True)
class Member:
    membership: Membership
    user: User
    announcements: Sequence[KeyChange] = ()


@dataclass(frozen=True, slots=True)
class NewInvitation:
    invitation: Invitation
    token: str  # shown once; only its keyed hash is stored


class OrgService:
    def __init__(
        self, keys: KeyService, invitation_ttl: timedelta, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._keys = keys
        self._ttl = invitation_ttl
        self._now = clock

    async def role_in(self, session: AsyncSession, owner: KeyOwner, org_id: str) -> tuple[Organization, str]:
        """The organisation and the caller's role in it; an API key reaches only its own."""
        if owner.via == "api_key" and org_id != owner.org_id:
            raise Forbidden("An API key acts only in its own organisation.", code="organization_mismatch")
        repo = OrgRepository(session)
        org = await repo.get(org_id)
        membership = await repo.membership(org_id, owner.user_id) if org is not None else None
        if org is None or membership is None:
            raise NotAMember("You are not a member of this organisation.")
        return org, membership.role

    async def create(self, session: AsyncSession, owner: KeyOwner, name: str) -> Organization:
        owner.require("write")
        org = Organization(id=new_id("org"), name=name, personal=False)
        await OrgRepository(session).add(
            org, Membership(org_id=org.id, user_id=owner.user_id, role=rules.OWNER)
        )
        return org

    async def mine(self, session: AsyncSession, owner: KeyOwner) -> Sequence[tuple[Organization, str]]:
        owner.require("read")
        return await OrgRepository(session).of_user(owner.user_id)

    async def members(
        self, session: AsyncSession, owner: KeyOwner, org_id: str
    ) -> Sequence[tuple[Membership, User]]:
        owner.require("read")
        await self.role_in(session, owner, org_id)
        return await OrgRepository(session).members(org_id)

    async def add_member(
        self, session: AsyncSession, owner: KeyOwner, org_id: str, email: str, role: str
    ) -> Member:
        """An existing user, found by the email they sign in with."""
        org, actor = await self._locked(session, owner, org_id, "write")
        rules.ensure_may_grant(actor, role)
        rules.ensure_open(org.personal)
        user = await AccountRepository(session).user_with_password(email)
        if user is None:
            raise UserNotFound("No user signs in with this email; send an invitation instead.", param="email")
        repo = OrgRepository(session)
        if await repo.membership(org_id, user.id) is not None:
            raise AlreadyMember("This user is already a member of the organisation.", param="email")
        membership = Membership(org_id=org_id, user_id=user.id, role=role)
        await repo.add(membership)
        return Member(membership, user)

    async def invite(
        self, session: AsyncSession, owner: KeyOwner, org_id: str, email: str, role: str
    ) -> NewInvitation:
        org, actor = await self._locked(session, owner, org_id, "write")
        rules.ensure_may_grant(actor, role)
        rules.ensure_open(org.personal)
        existing = await AccountRepository(session).user_with_password(email)
        if existing is not None and await OrgRepository(session).membership(org_id, existing.id) is not None:
            raise AlreadyMember("This user is already a member of the organisation.", param="email")
        token = INVITATION_PREFIX + secrets.token_urlsafe(32)
        invitation = Invitation(
            org_id=org_id,
            email=email,
            role=role,
            token_hash=self._keys.hash_secret(token),
            invited_by=owner.user_id,
            expires_at=self._now() + self._ttl,
        )
        await OrgRepository(session).add(invitation)
        return NewInvitation(invitation, token)

    async def invitations(self, session: AsyncSession, owner: KeyOwner, org_id: str) -> Sequence[Invitation]:
        owner.require("read")
        _, actor = await self.role_in(session, owner, org_id)
        rules.ensure_manager(actor)
        return await OrgRepository(session).pending_invitations(org_id, self._now())

    async def revoke_invitation(
        self, session: AsyncSession, owner: KeyOwner, org_id: str, invitation_id: int
    ) -> Invitation:
        _, actor = await self._locked(session, owner, org_id, "delete")
        rules.ensure_manager(actor)
        invitation = await OrgRepository(session).invitation(org_id, invitation_id)
        if invitation is None or invitation.accepted_at is not None:
            raise InvitationNotFound(f"No pending invitation with id {invitation_id}.", param="id")
        if invitation.revoked_at is None:
            invitation.revoked_at = self._now()
            await session.flush()
        return invitation

    async def accept(self, session: AsyncSession, owner: KeyOwner, token: str) -> tuple[Organization, Member]:
        """By the invitee, signed in: the invitation names their email. Used, revoked and unknown
        tokens answer alike; an expired one says so."""
        owner.require("write")
        if not token.startswith(INVITATION_PREFIX) or len(token) > MAX_INVITATION_LENGTH:
            raise InvitationNotFound("Unknown invitation.", param="token")
        repo = OrgRepository(session)
        # every pepper's hash: an invitation sent before a pepper rotation is still accepted
        invitation = await repo.invitation_by_hash(self._keys.secret_hashes(token))
        if invitation is None or invitation.accepted_at is not None or invitation.revoked_at is not None:
            raise InvitationNotFound("Unknown invitation.", param="token")
        now = self._now()
        if invitation.expires_at <= now:
            raise InvitationExpired("This invitation has expired; ask for a new one.", param="token")
        user = await AccountRepository(session).get_user(owner.user_id)
        if user is None:
            raise InvalidToken("This account no longer exists.", code="unknown_user")
        if (user.email or "").lower() != invitation.email.lower():
            raise InvitationForSomeoneElse("This invitation was sent to another email address.")
        org = await repo.lock(invitation.org_id)
        assert org is not None  # a foreign key keeps it
        if await repo.membership(org.id, user.id) is not None:
            raise AlreadyMember("You are already a member of this organisation.")
        invitation.accepted_at = now
        invitation.accepted_by = user.id
        membership = Membership(org_id=org.id, user_id=user.id, role=invitation.role)
        await repo.add(membership)
        return org, Member(membership, user)

    async def change_role(
        self, session: AsyncSession, owner: KeyOwner, org_id: str, user_id: str, new_role: str
    ) -> Member:
        _, actor = await self._locked(session, owner, org_id, "write")
        repo = OrgRepository(session)
        target = await self._target(repo, org_id, user_id)
        rules.ensure_may_change_role(actor, target.role, new_role, await repo.owners(org_id))
        user = await AccountRepository(session).get_user(user_id)
        assert user is not None  # a foreign key keeps it
        if target.role == new_role:
            return Member(target, user)
        target.role = new_role
        await session.flush()
        # Their keys now carry another org_role: gateways must drop the cached principals.
        keys = await KeyRepository(session).active_of_member(user_id, org_id)
        now = self._now()
        return Member(target, user, [KeyChange(k.id, k.key_hash, "updated", now) for k in keys])

    async def remove(self, session: AsyncSession, owner: KeyOwner, org_id: str, user_id: str) -> Member:
        """Removing someone (owners/admins) or leaving (anyone): the member's keys in the
        organisation are revoked with the membership, so none keeps spending its credits, and their
        sessions switched into it end (POST /auth/switch-organization)."""
        _, actor = await self._locked(session, owner, org_id, "delete")
        repo = OrgRepository(session)
        target = await self._target(repo, org_id, user_id)
        rules.ensure_may_remove(actor, owner.user_id, user_id, target.role, await repo.owners(org_id))
        user = await AccountRepository(session).get_user(user_id)
        assert user is not None
        now = self._now()
        changes = []
        for key in await KeyRepository(session).active_of_member(user_id, org_id):
            key.revoked_at = now
            changes.append(KeyChange(key.id, key.key_hash, "revoked", now))
        await SessionRepository(session).revoke_member_sessions(user_id, org_id, now, MEMBER_REMOVED)
        await repo.remove(target)
        return Member(target, user, changes)

    async def _locked(
        self, session: AsyncSession, owner: KeyOwner, org_id: str, permission: str
    ) -> tuple[Organization, str]:
        owner.require(permission)
        org, _ = await self.role_in(session, owner, org_id)
        await OrgRepository(session).lock(org.id)
        # Read again under the lock: the caller's role may have changed meanwhile.
        return await self.role_in(session, owner, org_id)

    @staticmethod
    async def _target(repo: OrgRepository, org_id: str, user_id: str) -> Membership:
        target = await repo.membership(org_id, user_id)
        if target is None:
            raise MemberNotFound(f"No member {user_id} in this organisation.", param="user_id")
        return target
