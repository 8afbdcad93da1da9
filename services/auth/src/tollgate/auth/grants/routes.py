"""Model authorisation (the Bedrock-style gateway lists these without paths; see docs/identity.md):

GET  /admin/group/models?group_id=        POST /admin/group/models/authorize|deauthorize {group_id, models}
GET  /admin/api-key/models?key_id=        POST /admin/api-key/models/authorize|deauthorize {key_id, models}

Thin handlers; the rules are in ModelGrants. Announcements go out only after the commit.
A team organisation's owner or admin reads groups' grants and their own keys' grants, and may only
narrow what their keys may call; group grants (platform-wide) change only with a platform admin key.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from tollgate.auth.audit.deps import AdminAudit, Recorder
from tollgate.auth.grants.models import ModelGrant
from tollgate.auth.grants.schemas import (
    GrantInfo,
    GroupModels,
    GroupModelsQuery,
    GroupModelsRequest,
    KeyModels,
    KeyModelsQuery,
    KeyModelsRequest,
)
from tollgate.auth.grants.service import GrantChange, ModelGrants
from tollgate.auth.web import Admin, Runtime, Transaction, Tx

router = APIRouter(tags=["model authorisation"])


def model_grants(request: Request) -> ModelGrants:
    grants: ModelGrants = request.app.state.model_grants
    return grants


Grants = Annotated[ModelGrants, Depends(model_grants)]


async def _applied(
    tx: Transaction,
    rt: Runtime,
    audit: Recorder,
    action: str,
    subject: str,
    subject_id: int,
    change: GrantChange,
) -> None:
    """After a grant change: announce the affected keys after commit, and audit the call."""
    if change.announcements:
        tx.after_commit(lambda: rt.events.publish(change.announcements))
    # Every call is recorded, a no-op too: the log answers "who tried what", not only what changed.
    await audit(action, subject, subject_id, {"changed": change.changed}, org_id=change.org_id)


def _infos(grants: Iterable[ModelGrant]) -> list[GrantInfo]:
    return [GrantInfo(model=g.model, created_at=g.created_at) for g in grants]


@router.get("/admin/group/models", response_model=GroupModels)
async def group_models(
    query: Annotated[GroupModelsQuery, Query()], tx: Tx, grants: Grants, _admin: Admin
) -> GroupModels:
    return await _group_models(tx, grants, query.group_id, [])


async def _group_models(
    tx: Transaction, grants: ModelGrants, group_id: int, changed: list[str]
) -> GroupModels:
    rows = await grants.group_models(tx.session, group_id)
    return GroupModels(group_id=group_id, data=_infos(rows), changed=changed)


@router.post("/admin/group/models/authorize", response_model=GroupModels)
async def authorize_group(
    body: GroupModelsRequest, tx: Tx, rt: Runtime, grants: Grants, admin: Admin, audit: AdminAudit
) -> GroupModels:
    admin.require_platform("Changing a group's models")
    change = await grants.authorize_group(tx.session, body.group_id, body.models)
    await _applied(tx, rt, audit, "grant.authorize", "group", body.group_id, change)
    return await _group_models(tx, grants, body.group_id, change.changed)


@router.post("/admin/group/models/deauthorize", response_model=GroupModels)
async def deauthorize_group(
    body: GroupModelsRequest, tx: Tx, rt: Runtime, grants: Grants, admin: Admin, audit: AdminAudit
) -> GroupModels:
    admin.require_platform("Changing a group's models")
    change = await grants.deauthorize_group(tx.session, body.group_id, body.models)
    await _applied(tx, rt, audit, "grant.deauthorize", "group", body.group_id, change)
    return await _group_models(tx, grants, body.group_id, change.changed)


async def _key_models(
    tx: Transaction, grants: ModelGrants, key_id: int, changed: list[str], org_id: str | None
) -> KeyModels:
    view = await grants.key_models(tx.session, key_id, org_id)
    return KeyModels(
        key_id=key_id,
        group_id=view.key.group_id,
        data=_infos(view.own),
        group_models=_infos(view.group),
        restricted=view.restricted,
        changed=changed,
    )


@router.get("/admin/api-key/models", response_model=KeyModels)
async def key_models(
    query: Annotated[KeyModelsQuery, Query()], tx: Tx, grants: Grants, admin: Admin
) -> KeyModels:
    return await _key_models(tx, grants, query.key_id, [], admin.org_id)


@router.post("/admin/api-key/models/authorize", response_model=KeyModels)
async def authorize_key(
    body: KeyModelsRequest, tx: Tx, rt: Runtime, grants: Grants, admin: Admin, audit: AdminAudit
) -> KeyModels:
    change = await grants.authorize_key(tx.session, body.key_id, body.models, admin.org_id)
    await _applied(tx, rt, audit, "grant.authorize", "api_key", body.key_id, change)
    return await _key_models(tx, grants, body.key_id, change.changed, admin.org_id)


@router.post("/admin/api-key/models/deauthorize", response_model=KeyModels)
async def deauthorize_key(
    body: KeyModelsRequest, tx: Tx, rt: Runtime, grants: Grants, admin: Admin, audit: AdminAudit
) -> KeyModels:
    change = await grants.deauthorize_key(tx.session, body.key_id, body.models, admin.org_id)
    await _applied(tx, rt, audit, "grant.deauthorize", "api_key", body.key_id, change)
    return await _key_models(tx, grants, body.key_id, change.changed, admin.org_id)
