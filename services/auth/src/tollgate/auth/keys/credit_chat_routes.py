"""/api/keys (the credit chat API): the dashboard's "Generate Key", for a signed-in user (session cookie or
bearer access token). Same rules as /auth/api-keys; the credit chat API's answers and error bodies."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tollgate.auth.audit.deps import AuditLogDep, request_actor
from tollgate.auth.keys.models import DEFAULT_PERMISSIONS, ApiKey
from tollgate.auth.keys.user_auth import OrgHeader, SessionOwner, parse_body, requested_org
from tollgate.auth.keys.user_routes import KeyIdPath, revoke_owned_key
from tollgate.auth.keys.user_schemas import (
    GeneratedKey,
    GenerateKeyRequest,
    KeySummary,
    KeySummaryList,
    RevokedKey,
)
from tollgate.auth.keys.user_service import NewUserKey, create_user_key, list_user_keys
from tollgate.auth.web import Runtime, Tx
from tollgate.common.errors import TollgateError
from tollgate.common.http import ErrorRenderer

PATH = "/api/keys"
router = APIRouter(prefix=PATH, tags=["user api keys"])


# 200, not 201: the credit chat API lists 200 as its only success status.
@router.post("", response_model=GeneratedKey)
async def generate_key(
    request: Request, tx: Tx, rt: Runtime, owner: SessionOwner, audit: AuditLogDep, org: OrgHeader = None
) -> GeneratedKey:
    body = await parse_body(request, GenerateKeyRequest, owner)
    new = NewUserKey(body.name, DEFAULT_PERMISSIONS)
    issued = await create_user_key(tx.session, rt.keys, owner, requested_org(org), new)
    key = issued.view.key
    actor = request_actor(request, rt, key_id=None, user_id=owner.user_id, org_id=key.org_id)
    details = {"name": key.name, "key_prefix": key.key_prefix, "via": owner.via}
    await audit.record(
        tx.session, actor, "user_api_key.create", "api_key", key.id, details, org_id=key.org_id
    )
    return GeneratedKey(
        id=key.id, key=issued.api_key, name=key.name, prefix=key.key_prefix, created_at=key.created_at
    )


@router.get("", response_model=KeySummaryList)
async def list_keys(tx: Tx, owner: SessionOwner, org: OrgHeader = None) -> KeySummaryList:
    keys = await list_user_keys(tx.session, owner, requested_org(org))
    return KeySummaryList(keys=[_summary(k) for k in keys])


@router.delete("/{key_id}", response_model=RevokedKey)
async def revoke_key(
    key_id: KeyIdPath,
    request: Request,
    tx: Tx,
    rt: Runtime,
    owner: SessionOwner,
    audit: AuditLogDep,
    org: OrgHeader = None,
) -> RevokedKey:
    return await revoke_owned_key(key_id, request, tx, rt, owner, audit, org)


def _summary(key: ApiKey) -> KeySummary:
    return KeySummary(
        id=key.id,
        name=key.name,
        prefix=key.key_prefix,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        expires_at=key.expires_at,
        revoked=key.revoked_at is not None,
    )


def with_credit_chat_errors(fallback: ErrorRenderer) -> ErrorRenderer:
    """The credit chat API answers errors as `{"error": "<message>"}`; every other path keeps `fallback`."""

    def render(request: Request, exc: TollgateError) -> dict[str, Any]:
        path = request.url.path
        if path == PATH or path.startswith(PATH + "/"):
            return {"error": exc.message}
        return fallback(request, exc)

    return render
