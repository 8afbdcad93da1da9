"""/auth/api-keys (SloughGPT): a signed-in user's own keys. Thin handlers; the rules are in
user_service. Errors answer in SloughGPT's envelope (every /auth/* route does)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from tollgate.auth.audit.deps import AuditLogDep, request_actor
from tollgate.auth.audit.service import AuditLog
from tollgate.auth.keys.models import ApiKey
from tollgate.auth.keys.user_auth import HeaderOwner, KeyOwner, OrgHeader, parse_body, requested_org
from tollgate.auth.keys.user_schemas import (
    CreatedUserKey,
    CreateUserKeyRequest,
    RevokedKey,
    UserKeyInfo,
    UserKeyList,
)
from tollgate.auth.keys.user_service import NewUserKey, create_user_key, list_user_keys, revoke_user_key
from tollgate.auth.web import AuthRuntime, Runtime, Transaction, Tx

router = APIRouter(prefix="/auth/api-keys", tags=["user api keys"])

KeyIdPath = Annotated[int, Path(ge=1, le=9_223_372_036_854_775_807)]


@router.post("", status_code=201, response_model=CreatedUserKey)
async def create_key(
    request: Request, tx: Tx, rt: Runtime, owner: HeaderOwner, audit: AuditLogDep, org: OrgHeader = None
) -> CreatedUserKey:
    body = await parse_body(request, CreateUserKeyRequest, owner)
    new = NewUserKey(body.name, body.permissions, body.expires_days)
    issued = await create_user_key(tx.session, rt.keys, owner, requested_org(org), new)
    key = issued.view.key
    actor = request_actor(request, rt, key_id=None, user_id=owner.user_id, org_id=key.org_id)
    details = {"name": key.name, "key_prefix": key.key_prefix, "via": owner.via}
    await audit.record(
        tx.session, actor, "user_api_key.create", "api_key", key.id, details, org_id=key.org_id
    )
    return CreatedUserKey(
        id=key.id,
        api_key=issued.api_key,
        key_prefix=key.key_prefix,
        name=key.name,
        permissions=list(key.permissions),
        org_id=key.org_id,
        expires_at=key.expires_at,
        created_at=key.created_at,
    )


@router.get("", response_model=UserKeyList)
async def list_keys(tx: Tx, owner: HeaderOwner, org: OrgHeader = None) -> UserKeyList:
    keys = await list_user_keys(tx.session, owner, requested_org(org))
    return UserKeyList(data=[key_info(k) for k in keys], total=len(keys))


@router.delete("/{key_id}", response_model=RevokedKey)
async def revoke_key(
    key_id: KeyIdPath,
    request: Request,
    tx: Tx,
    rt: Runtime,
    owner: HeaderOwner,
    audit: AuditLogDep,
    org: OrgHeader = None,
) -> RevokedKey:
    return await revoke_owned_key(key_id, request, tx, rt, owner, audit, org)


async def revoke_owned_key(
    key_id: int,
    request: Request,
    tx: Transaction,
    rt: AuthRuntime,
    owner: KeyOwner,
    audit: AuditLog,
    org: str | None,
) -> RevokedKey:
    """Revokes one of the caller's keys (SloughGPT's and the credit chat API's routes alike), audited."""
    change = await revoke_user_key(tx.session, rt.keys, owner, requested_org(org), key_id)
    org_id = requested_org(org) or owner.org_id
    actor = request_actor(request, rt, key_id=None, user_id=owner.user_id, org_id=org_id)
    details = {"via": owner.via}
    await audit.record(tx.session, actor, "user_api_key.delete", "api_key", key_id, details, org_id=org_id)
    # After commit, like the admin delete: gateways drop their cached principal for this key.
    tx.after_commit(lambda: rt.events.publish([change]))
    return RevokedKey(id=change.key_id)


def key_info(key: ApiKey) -> UserKeyInfo:
    return UserKeyInfo(
        id=key.id,
        key_prefix=key.key_prefix,
        name=key.name,
        permissions=list(key.permissions),
        org_id=key.org_id,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        expires_at=key.expires_at,
        revoked=key.revoked_at is not None,
        revoked_at=key.revoked_at,
    )
