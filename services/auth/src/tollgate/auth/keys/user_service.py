"""The rules for a user's own keys (SloughGPT and the credit chat API): create, list and revoke them, in one
organisation at a time. Gets the session per call and never commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.auth.accounts.repository import AccountRepository
from tollgate.auth.keys.events import KeyChange
from tollgate.auth.keys.models import ApiKey
from tollgate.auth.keys.repository import KeyRepository
from tollgate.auth.keys.service import Issued, KeyNotFound, KeyService
from tollgate.auth.keys.user_auth import KeyOwner
from tollgate.auth.sessions.errors import InvalidToken
from tollgate.common.errors import Forbidden

# A person holds a handful of keys; the cap only bounds one answer's size should that go wrong.
MAX_LISTED = 1000


class NotAMember(Forbidden):
    code = "not_a_member"


@dataclass(frozen=True, slots=True)
class NewUserKey:
    name: str
    permissions: Sequence[str]
    expires_days: int | None = None


async def organization_for(session: AsyncSession, owner: KeyOwner, requested: str | None) -> str:
    """The organisation the call acts in: the one named by `Swarms-Organization` if the user
    belongs to it, else the credential's own. An API key stays inside its own organisation."""
    org_id = requested or owner.org_id
    if owner.via == "api_key" and org_id != owner.org_id:
        raise Forbidden("An API key acts only in its own organisation.", code="organization_mismatch")
    # Checked for the credential's own organisation too: a user removed from it loses its keys.
    if await AccountRepository(session).role_in(org_id, owner.user_id) is None:
        # One answer whether the organisation exists or not: ids are not probed through this.
        raise NotAMember("You are not a member of this organisation.")
    return org_id


async def create_user_key(
    session: AsyncSession, keys: KeyService, owner: KeyOwner, requested_org: str | None, new: NewUserKey
) -> Issued:
    owner.require("write")
    org_id = await organization_for(session, owner, requested_org)
    user = await AccountRepository(session).get_user(owner.user_id)
    if user is None:
        raise InvalidToken("This account no longer exists.", code="unknown_user")
    return await keys.issue(
        session,
        name=new.name,
        org_id=org_id,
        user_id=user.id,
        permissions=new.permissions,
        lifetime=timedelta(days=new.expires_days) if new.expires_days is not None else None,
        # Model grants follow the user's group, as they do for keys an admin applies for.
        group_id=user.group_id,
    )


async def list_user_keys(
    session: AsyncSession, owner: KeyOwner, requested_org: str | None
) -> Sequence[ApiKey]:
    owner.require("read")
    org_id = await organization_for(session, owner, requested_org)
    return await KeyRepository(session).owned_by(owner.user_id, org_id, limit=MAX_LISTED)


async def revoke_user_key(
    session: AsyncSession, keys: KeyService, owner: KeyOwner, requested_org: str | None, key_id: int
) -> KeyChange:
    """Someone else's key answers exactly like a missing one (404): ids reveal nothing."""
    owner.require("delete")
    org_id = await organization_for(session, owner, requested_org)
    if await KeyRepository(session).get_owned(key_id, owner.user_id, org_id) is None:
        raise KeyNotFound(f"No API key with id {key_id}.", param="id")
    return await keys.revoke(session, key_id)
