"""Rate tiers and the limits of keys and organisations (docs/limits.md), next to the Bedrock-style gateway's
/admin/api-key/* routes and in their envelope:

GET  /admin/rate-tier/list                POST /admin/rate-tier/save {name, rpm, tpm, tpd}
POST /admin/rate-tier/delete {name}
GET  /admin/api-key/limits?id=            POST /admin/api-key/limits {id, tier, rpm, tpm, tpd}
GET  /admin/org/limits?org_id=            POST /admin/org/limits {org_id, tier, rpm, tpm, tpd}

Thin handlers; the rules are in LimitService. Tiers and limits decide what a customer may use, so
only platform admins change them; an organisation's owners and admins read their own. Every change
is audited, and the keys it concerns are announced on auth.keys.v1 after the commit.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from tollgate.auth.audit.deps import AdminAudit
from tollgate.auth.limits.schemas import (
    DeletedTier,
    DeleteTierRequest,
    KeyLimits,
    KeyLimitsQuery,
    KeyLimitsRequest,
    LimitSettings,
    OrgLimits,
    OrgLimitsQuery,
    OrgLimitsRequest,
    SaveTierRequest,
    TierInfo,
    TierList,
)
from tollgate.auth.limits.service import LimitsChange, LimitService
from tollgate.auth.web import Admin, Runtime, Transaction, Tx
from tollgate.common.auth_client import DELETE

router = APIRouter(tags=["rate limits"])


def limit_service(request: Request) -> LimitService:
    service: LimitService = request.app.state.limits
    return service


Limits = Annotated[LimitService, Depends(limit_service)]


def _settings(body: KeyLimitsRequest | OrgLimitsRequest) -> tuple[LimitSettings, set[str]]:
    values = LimitSettings(tier=body.tier, rpm=body.rpm, tpm=body.tpm, tpd=body.tpd)
    return values, set(body.model_fields_set) & set(LimitSettings.model_fields)


def _announce(tx: Transaction, rt: Runtime, change: LimitsChange) -> None:
    if change.announcements:
        tx.after_commit(lambda: rt.events.publish(change.announcements))


def _audited(change: LimitsChange) -> dict[str, object]:
    # Every call is recorded, a no-op too: the log answers "who tried what", not only what changed.
    return {
        "changed": change.changed,
        "before": change.before.model_dump(),
        "after": change.after.model_dump(),
        "announced_keys": len(change.announcements),
    }


# --- tiers ---


@router.get("/admin/rate-tier/list", response_model=TierList)
async def list_tiers(tx: Tx, limits: Limits, _admin: Admin) -> TierList:
    tiers = await limits.tiers(tx.session)
    return TierList(data=[TierInfo.build(t, limits.default_tier) for t in tiers], total=len(tiers))


@router.post("/admin/rate-tier/save", response_model=TierInfo)
async def save_tier(
    body: SaveTierRequest, tx: Tx, rt: Runtime, limits: Limits, admin: Admin, audit: AdminAudit
) -> TierInfo:
    admin.require_platform("Changing a rate tier")
    saved = await limits.save_tier(tx.session, body)
    info = TierInfo.build(saved.tier, limits.default_tier)
    details = {
        "created": saved.created,
        "before": None
        if saved.before is None
        else {m: getattr(saved.before, m) for m in ("rpm", "tpm", "tpd")},
        "after": {"rpm": info.rpm, "tpm": info.tpm, "tpd": info.tpd},
        "announced_keys": len(saved.announcements),
    }
    await audit("rate_tier.save", "rate_tier", info.name, details)
    if saved.announcements:
        tx.after_commit(lambda: rt.events.publish(saved.announcements))
    return info


@router.post("/admin/rate-tier/delete", response_model=DeletedTier)
async def delete_tier(
    body: DeleteTierRequest, tx: Tx, limits: Limits, admin: Admin, audit: AdminAudit
) -> DeletedTier:
    admin.require_platform("Deleting a rate tier")
    admin.require(DELETE)
    await limits.delete_tier(tx.session, body.name)
    await audit("rate_tier.delete", "rate_tier", body.name)
    return DeletedTier(name=body.name)


# --- keys ---


async def _key_limits(tx: Transaction, limits: LimitService, key_id: int, org_id: str | None) -> KeyLimits:
    key = await limits.key(tx.session, key_id, org_id, lock=False)
    resolved = await limits.key_limits(tx.session, key)
    return KeyLimits(
        id=key.id,
        org_id=key.org_id,
        **LimitSettings.of(key).model_dump(),
        effective=LimitSettings.from_limits(resolved),
    )


@router.get("/admin/api-key/limits", response_model=KeyLimits)
async def key_limits(
    query: Annotated[KeyLimitsQuery, Query()], tx: Tx, limits: Limits, admin: Admin
) -> KeyLimits:
    return await _key_limits(tx, limits, query.id, admin.org_id)


@router.post("/admin/api-key/limits", response_model=KeyLimits)
async def set_key_limits(
    body: KeyLimitsRequest, tx: Tx, rt: Runtime, limits: Limits, admin: Admin, audit: AdminAudit
) -> KeyLimits:
    admin.require_platform("Changing a key's rate limits")
    key = await limits.key(tx.session, body.id, None, lock=True)
    change = await limits.set_key_limits(tx.session, key, *_settings(body))
    await audit("api_key.limits", "api_key", key.id, _audited(change), org_id=key.org_id)
    _announce(tx, rt, change)
    return await _key_limits(tx, limits, key.id, None)


# --- organisations ---


async def _org_limits(tx: Transaction, limits: LimitService, org_id: str, scope: str | None) -> OrgLimits:
    org = await limits.organization(tx.session, org_id, scope, lock=False)
    resolved = await limits.org_limits(tx.session, org)
    return OrgLimits(
        org_id=org.id, **LimitSettings.of(org).model_dump(), effective=LimitSettings.from_limits(resolved)
    )


@router.get("/admin/org/limits", response_model=OrgLimits)
async def org_limits(
    query: Annotated[OrgLimitsQuery, Query()], tx: Tx, limits: Limits, admin: Admin
) -> OrgLimits:
    return await _org_limits(tx, limits, query.org_id, admin.org_id)


@router.post("/admin/org/limits", response_model=OrgLimits)
async def set_org_limits(
    body: OrgLimitsRequest, tx: Tx, rt: Runtime, limits: Limits, admin: Admin, audit: AdminAudit
) -> OrgLimits:
    admin.require_platform("Changing an organisation's rate limits")
    org = await limits.organization(tx.session, body.org_id, None, lock=True)
    change = await limits.set_org_limits(tx.session, org, *_settings(body))
    await audit("org.limits", "organization", org.id, _audited(change), org_id=org.id)
    _announce(tx, rt, change)
    return await _org_limits(tx, limits, org.id, None)
