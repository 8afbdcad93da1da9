"""Creating accounts: a user always comes with a personal organisation that they own.

Shared by the admin key route (the Bedrock-style gateway) and self-service registration (SloughGPT)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.auth.accounts.models import Membership, Organization, User
from tollgate.auth.accounts.repository import AccountRepository

OWNER = "owner"


def new_id(kind: str) -> str:
    return f"{kind}_{secrets.token_hex(12)}"


@dataclass(frozen=True, slots=True)
class PersonalAccount:
    org: Organization
    user: User


async def create_personal_account(
    session: AsyncSession,
    *,
    name: str,
    email: str | None,
    role: str = "user",
    group_id: int | None = None,
    password_hash: str | None = None,
) -> PersonalAccount:
    """Flushes (so a unique-email clash surfaces here as IntegrityError) but never commits."""
    org = Organization(id=new_id("org"), name=name, personal=True)
    user = User(
        id=new_id("usr"),
        name=name,
        email=email,
        role=role,
        group_id=group_id,
        org_id=org.id,
        password_hash=password_hash,
    )
    accounts = AccountRepository(session)
    await accounts.add(org)  # flushed before the rows that reference it
    await accounts.add(user)
    await accounts.add(Membership(org_id=org.id, user_id=user.id, role=OWNER))
    return PersonalAccount(org, user)
