"""Admin API keys (the Bedrock-style gateway): thin handlers; the rules are in KeyService.

A platform admin key acts on every key; a team organisation's owner or admin only on that
organisation's keys (another's answer 404, as if missing), never making admin keys or choosing
groups (docs/identity.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from tollgate.auth.audit.deps import AdminAudit
from tollgate.auth.keys.schemas import (
    ApplyKeyRequest,
    DeletedKey,
    DeleteKeyRequest,
    IssuedKey,
    KeyInfo,
    KeyPage,
    ListKeysQuery,
    UpdateKeyRequest,
)
from tollgate.auth.keys.service import PlatformAdminRequired
from tollgate.auth.web import Admin, AdminScope, Runtime, Tx
from tollgate.common.auth_client import DELETE

router = APIRouter(prefix="/admin/api-key", tags=["api keys"])


def org_admin_apply(scope: AdminScope, body: ApplyKeyRequest) -> ApplyKeyRequest:
    """An organisation admin's key: role user, in the admin's own group (groups decide model access
    platform-wide, so only a platform admin places keys in them)."""
    if body.role != "user":
        raise PlatformAdminRequired("Creating an admin key needs a platform admin key.", param="role")
    own_group = scope.principal.group_id or None
    if body.group_id is not None and body.group_id != own_group:
        raise PlatformAdminRequired("Choosing a group needs a platform admin key.", param="group_id")
    return body.model_copy(update={"group_id": own_group})


@router.post("/apply", response_model=IssuedKey)
async def apply_key(body: ApplyKeyRequest, tx: Tx, rt: Runtime, admin: Admin, audit: AdminAudit) -> IssuedKey:
    if not admin.platform:
        body = org_admin_apply(admin, body)
    issued = await rt.keys.apply(tx.session, body, admin.org_id)
    key = issued.view.key
    await audit(
        "api_key.apply",
        "api_key",
        key.id,
        {"name": key.name, "role": key.role, "group_id": key.group_id, "key_prefix": key.key_prefix},
        org_id=key.org_id,
    )
    info = KeyInfo.build(issued.view.key, issued.view.email)
    return IssuedKey(**info.model_dump(), api_key=issued.api_key)


@router.post("/update", response_model=KeyInfo)
async def update_key(body: UpdateKeyRequest, tx: Tx, rt: Runtime, admin: Admin, audit: AdminAudit) -> KeyInfo:
    view, change = await rt.keys.update(tx.session, body, admin.org_id)
    details = body.model_dump(exclude={"id"}, exclude_unset=True)
    await audit("api_key.update", "api_key", body.id, details, org_id=view.key.org_id)
    if change is not None:
        tx.after_commit(lambda: rt.events.publish([change]))
    return KeyInfo.build(view.key, view.email)


@router.post("/delete", response_model=DeletedKey)
async def delete_key(
    body: DeleteKeyRequest, tx: Tx, rt: Runtime, admin: Admin, audit: AdminAudit
) -> DeletedKey:
    admin.require(DELETE)
    change = await rt.keys.revoke(tx.session, body.id, admin.org_id)
    org_id = await rt.keys.org_of(tx.session, change.key_id)
    await audit("api_key.delete", "api_key", change.key_id, org_id=org_id)
    tx.after_commit(lambda: rt.events.publish([change]))
    return DeletedKey(id=change.key_id)


@router.get("/list", response_model=KeyPage)
async def list_keys(query: Annotated[ListKeysQuery, Query()], tx: Tx, rt: Runtime, admin: Admin) -> KeyPage:
    views, total = await rt.keys.list(tx.session, query, admin.org_id)
    return KeyPage(
        data=[KeyInfo.build(v.key, v.email) for v in views],
        total=total,
        limit=query.limit,
        offset=query.offset,
    )
