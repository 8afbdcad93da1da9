"""Bodies of /auth/orgs (team organisations, members, invitations)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

from tollgate.auth.keys.schemas import Name
from tollgate.auth.sessions.schemas import Email

Role = Literal["owner", "admin", "member"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateOrgRequest(_Body):
    name: Name


class AddMemberRequest(_Body):
    email: Email
    role: Role = "member"


class InviteRequest(_Body):
    email: Email
    role: Role = "member"


class ChangeRoleRequest(_Body):
    role: Role


class AcceptInvitationRequest(_Body):
    token: Annotated[str, StringConstraints(min_length=1, max_length=256, strict=True)]


class OrgOut(BaseModel):
    id: str
    name: str
    personal: bool
    role: str  # the caller's role in it
    created_at: datetime


class OrgList(BaseModel):
    data: list[OrgOut]
    total: int


class MemberOut(BaseModel):
    user_id: str
    name: str
    email: str | None
    role: str
    joined_at: datetime


class MemberList(BaseModel):
    data: list[MemberOut]
    total: int


class RemovedMember(BaseModel):
    user_id: str
    removed: Literal[True] = True
    revoked_keys: int


class InvitationOut(BaseModel):
    id: int
    org_id: str
    email: str
    role: str
    created_at: datetime
    expires_at: datetime


class CreatedInvitation(InvitationOut):
    token: str  # shown once; the invitee accepts it with POST /auth/invitations/accept


class InvitationList(BaseModel):
    data: list[InvitationOut]
    total: int


class Accepted(BaseModel):
    organization: OrgOut
