"""Admin API keys (seed 004): thin handlers; the rules are in KeyService."""

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
from tollgate.auth.web import Admin, Runtime, Tx

router = APIRouter(prefix="/admin/api-key", tags=["api keys"])


@router.post("/apply", response_model=IssuedKey)
async def apply_key(body: ApplyKeyRequest, tx: Tx, rt: Runtime, audit: AdminAudit) -> IssuedKey:
    issued = await rt.keys.apply(tx.session, body)
    key = issued.view.key
    await audit(
        "api_key.apply",
        "api_key",
        key.id,
        {"name": key.name, "role": key.role, "group_id": key.group_id, "key_prefix": key.key_prefix},
    )
    info = KeyInfo.build(issued.view.key, issued.view.email)
    return IssuedKey(**info.model_dump(), api_key=issued.api_key)


@router.post("/update", response_model=KeyInfo)
async def update_key(body: UpdateKeyRequest, tx: Tx, rt: Runtime, audit: AdminAudit) -> KeyInfo:
    view, change = await rt.keys.update(tx.session, body)
    await audit("api_key.update", "api_key", body.id, body.model_dump(exclude={"id"}, exclude_unset=True))
    if change is not None:
        tx.after_commit(lambda: rt.events.publish([change]))
    return KeyInfo.build(view.key, view.email)


@router.post("/delete", response_model=DeletedKey)
async def delete_key(body: DeleteKeyRequest, tx: Tx, rt: Runtime, audit: AdminAudit) -> DeletedKey:
    change = await rt.keys.revoke(tx.session, body.id)
    await audit("api_key.delete", "api_key", change.key_id)
    tx.after_commit(lambda: rt.events.publish([change]))
    return DeletedKey(id=change.key_id)


@router.get("/list", response_model=KeyPage)
async def list_keys(query: Annotated[ListKeysQuery, Query()], tx: Tx, rt: Runtime, _admin: Admin) -> KeyPage:
    views, total = await rt.keys.list(tx.session, query)
    return KeyPage(
        data=[KeyInfo.build(v.key, v.email) for v in views],
        total=total,
        limit=query.limit,
        offset=query.offset,
    )
