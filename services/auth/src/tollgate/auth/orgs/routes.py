"""/auth/orgs: team organisations, their members and invitations, for a signed-in user (access
token) or one of the user's API keys (within its permissions and its own organisation). Thin
handlers; the rules are in OrgService and `rules`. SloughGPT's envelope, like every /auth/* route.

Every change is audited with the organisation it concerns; key changes are announced after commit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from prometheus_client import CollectorRegistry, Counter

from tollgate.auth.accounts.models import Membership, Organization, User
from tollgate.auth.audit.deps import AuditLogDep, request_actor
from tollgate.auth.keys.user_auth import HeaderOwner, parse_body
from tollgate.auth.orgs.models import Invitation
from tollgate.auth.orgs.schemas import (
    Accepted,
    AcceptInvitationRequest,
    AddMemberRequest,
    ChangeRoleRequest,
    CreatedInvitation,
    CreateOrgRequest,
    InvitationList,
    InvitationOut,
    InviteRequest,
    MemberList,
    MemberOut,
    OrgList,
    OrgOut,
    RemovedMember,
)
from tollgate.auth.orgs.service import Member, OrgService
from tollgate.auth.web import AuthRuntime, Runtime, Transaction, Tx

router = APIRouter(prefix="/auth", tags=["organisations"])
log = logging.getLogger(__name__)


def org_change_counter(registry: CollectorRegistry) -> Counter:
    return Counter(
        "auth_org_changes_total",
        "Organisation and membership changes by action",
        ["action"],
        registry=registry,
    )


OrgId = Annotated[str, Path(min_length=1, max_length=64)]
UserId = Annotated[str, Path(min_length=1, max_length=64)]
InvitationId = Annotated[int, Path(ge=1, le=9_223_372_036_854_775_807)]


def org_service(request: Request) -> OrgService:
    service: OrgService = request.app.state.orgs
    return service


Orgs = Annotated[OrgService, Depends(org_service)]


class _Audit:
    """Records one membership action in the request's transaction, with the organisation."""

    def __init__(self, request: Request, tx: Tx, rt: Runtime, owner: HeaderOwner, log: AuditLogDep) -> None:
        self._actor = request_actor(request, rt, key_id=None, user_id=owner.user_id, org_id=owner.org_id)
        self._tx = tx
        self._log = log
        self._changes: Counter = request.app.state.org_changes

    async def __call__(
        self, action: str, org_id: str, target_type: str, target_id: object, details: Mapping[str, Any]
    ) -> None:
        await self._log.record(
            self._tx.session, self._actor, action, target_type, target_id, {**details}, org_id=org_id
        )
        self._changes.labels(action).inc()
        log.info(
            "organisation change",
            extra={
                "action": action,
                "org_id": org_id,
                "target_id": str(target_id),
                "actor": self._actor.user_id,
            },
        )


Audit = Annotated[_Audit, Depends()]


def _org(org: Organization, role: str) -> OrgOut:
    return OrgOut(id=org.id, name=org.name, personal=org.personal, role=role, created_at=org.created_at)


def _member(m: Membership, u: User) -> MemberOut:
    return MemberOut(user_id=u.id, name=u.name, email=u.email, role=m.role, joined_at=m.created_at)


def _invitation(i: Invitation) -> InvitationOut:
    return InvitationOut(
        id=i.id, org_id=i.org_id, email=i.email, role=i.role, created_at=i.created_at, expires_at=i.expires_at
    )


@router.post("/orgs", status_code=201, response_model=OrgOut)
async def create_org(request: Request, tx: Tx, owner: HeaderOwner, orgs: Orgs, audit: Audit) -> OrgOut:
    body = await parse_body(request, CreateOrgRequest, owner)
    org = await orgs.create(tx.session, owner, body.name)
    await audit("org.create", org.id, "organization", org.id, {"name": org.name})
    await tx.session.refresh(org)  # created_at
    return _org(org, "owner")


@router.get("/orgs", response_model=OrgList)
async def list_orgs(tx: Tx, owner: HeaderOwner, orgs: Orgs) -> OrgList:
    rows = await orgs.mine(tx.session, owner)
    return OrgList(data=[_org(o, r) for o, r in rows], total=len(rows))


@router.get("/orgs/{org_id}/members", response_model=MemberList)
async def list_members(org_id: OrgId, tx: Tx, owner: HeaderOwner, orgs: Orgs) -> MemberList:
    rows = await orgs.members(tx.session, owner, org_id)
    return MemberList(data=[_member(m, u) for m, u in rows], total=len(rows))


@router.post("/orgs/{org_id}/members", status_code=201, response_model=MemberOut)
async def add_member(
    org_id: OrgId, request: Request, tx: Tx, owner: HeaderOwner, orgs: Orgs, audit: Audit
) -> MemberOut:
    body = await parse_body(request, AddMemberRequest, owner)
    added = await orgs.add_member(tx.session, owner, org_id, body.email, body.role)
    await audit("member.add", org_id, "user", added.user.id, {"role": body.role})
    await tx.session.refresh(added.membership)
    return _member(added.membership, added.user)


@router.patch("/orgs/{org_id}/members/{user_id}", response_model=MemberOut)
async def change_role(
    org_id: OrgId,
    user_id: UserId,
    request: Request,
    tx: Tx,
    rt: Runtime,
    owner: HeaderOwner,
    orgs: Orgs,
    audit: Audit,
) -> MemberOut:
    body = await parse_body(request, ChangeRoleRequest, owner)
    changed = await orgs.change_role(tx.session, owner, org_id, user_id, body.role)
    await audit("member.role", org_id, "user", user_id, {"role": body.role})
    _announce(tx, rt, changed)
    return _member(changed.membership, changed.user)


@router.delete("/orgs/{org_id}/members/{user_id}", response_model=RemovedMember)
async def remove_member(
    org_id: OrgId, user_id: UserId, tx: Tx, rt: Runtime, owner: HeaderOwner, orgs: Orgs, audit: Audit
) -> RemovedMember:
    removed = await orgs.remove(tx.session, owner, org_id, user_id)
    action = "member.leave" if user_id == owner.user_id else "member.remove"
    details = {"role": removed.membership.role, "revoked_keys": len(removed.announcements)}
    await audit(action, org_id, "user", user_id, details)
    _announce(tx, rt, removed)
    return RemovedMember(user_id=user_id, revoked_keys=len(removed.announcements))


@router.post("/orgs/{org_id}/invitations", status_code=201, response_model=CreatedInvitation)
async def invite(
    org_id: OrgId, request: Request, tx: Tx, owner: HeaderOwner, orgs: Orgs, audit: Audit
) -> CreatedInvitation:
    body = await parse_body(request, InviteRequest, owner)
    new = await orgs.invite(tx.session, owner, org_id, body.email, body.role)
    await audit("invitation.create", org_id, "invitation", new.invitation.id, {"role": body.role})
    await tx.session.refresh(new.invitation)
    return CreatedInvitation(**_invitation(new.invitation).model_dump(), token=new.token)


@router.get("/orgs/{org_id}/invitations", response_model=InvitationList)
async def list_invitations(org_id: OrgId, tx: Tx, owner: HeaderOwner, orgs: Orgs) -> InvitationList:
    rows = await orgs.invitations(tx.session, owner, org_id)
    return InvitationList(data=[_invitation(i) for i in rows], total=len(rows))


@router.delete("/orgs/{org_id}/invitations/{invitation_id}", response_model=InvitationOut)
async def revoke_invitation(
    org_id: OrgId, invitation_id: InvitationId, tx: Tx, owner: HeaderOwner, orgs: Orgs, audit: Audit
) -> InvitationOut:
    invitation = await orgs.revoke_invitation(tx.session, owner, org_id, invitation_id)
    await audit("invitation.revoke", org_id, "invitation", invitation_id, {})
    return _invitation(invitation)


@router.post("/invitations/accept", response_model=Accepted)
async def accept_invitation(
    request: Request, tx: Tx, owner: HeaderOwner, orgs: Orgs, audit: Audit
) -> Accepted:
    body = await parse_body(request, AcceptInvitationRequest, owner)
    org, joined = await orgs.accept(tx.session, owner, body.token)
    await audit("invitation.accept", org.id, "user", joined.user.id, {"role": joined.membership.role})
    return Accepted(organization=_org(org, joined.membership.role))


def _announce(tx: Transaction, rt: AuthRuntime, member: Member) -> None:
    changes = list(member.announcements)
    if changes:
        tx.after_commit(lambda: rt.events.publish(changes))
