"""Rate tiers and the limits of keys and organisations over ASGI, on the scratch PostgreSQL:
the seeded tiers, validation (nothing half-written), refusals, audit, the announcements that drop
the gateway's cached principals, and the limits Authenticate puts in the principal."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from auth_testkit import RecordingEvents
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tollgate.auth.accounts.models import Organization
from tollgate.auth.app import build_app
from tollgate.auth.audit.models import AuditEvent
from tollgate.auth.keys.bootstrap import ensure_bootstrap_admin
from tollgate.auth.keys.keygen import KeyHasher
from tollgate.auth.keys.last_used import LastUsedRecorder
from tollgate.auth.keys.models import ApiKey
from tollgate.auth.keys.service import KeyService, utcnow
from tollgate.auth.limits.models import RateTier
from tollgate.auth.sessions.service import SessionService
from tollgate.auth.web import AuthRuntime
from tollgate.common.auth_client import NO_RATE_LIMITS, Principal, RateLimits

ADMIN_KEY = "tg_admin_key_for_the_limits_tests_0123456789"


@pytest.fixture
def events() -> RecordingEvents:
    return RecordingEvents()


async def _admin_client(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    keys: KeyService,
    hasher: KeyHasher,
    events: RecordingEvents,
    identity: SessionService,
) -> httpx.AsyncClient:
    async with sessions.begin() as session:
        await ensure_bootstrap_admin(session, hasher, ADMIN_KEY, utcnow())
    app = build_app(AuthRuntime(sessions, keys, events, identity), engine, CollectorRegistry())
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://auth")
    client.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
    return client


@pytest.fixture
async def admin(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    key_service: KeyService,
    hasher: KeyHasher,
    events: RecordingEvents,
    identity: SessionService,
) -> AsyncIterator[httpx.AsyncClient]:
    async with await _admin_client(engine, sessions, key_service, hasher, events, identity) as client:
        yield client


async def _apply(admin: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    body.setdefault("name", f"user-{uuid.uuid4().hex[:8]}")
    resp = await admin.post("/admin/api-key/apply", json=body)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def _tier(admin: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    body.setdefault("name", f"tier-{uuid.uuid4().hex[:8]}")
    resp = await admin.post("/admin/rate-tier/save", json=body)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def _principal(sessions: async_sessionmaker[AsyncSession], keys: KeyService, api_key: str) -> Principal:
    async with sessions() as session:
        result = await keys.authenticate(session, api_key)
    assert result.principal is not None, result.reason
    return result.principal


async def _audit(sessions: async_sessionmaker[AsyncSession], action: str, target_id: str) -> list[AuditEvent]:
    async with sessions() as session:
        stmt = select(AuditEvent).where(AuditEvent.action == action, AuditEvent.target_id == target_id)
        return list((await session.execute(stmt.order_by(AuditEvent.id))).scalars().all())


# --- tiers ---


async def test_sloughgpts_tiers_are_seeded_with_tokens_per_minute_not_limited(
    admin: httpx.AsyncClient,
) -> None:
    resp = await admin.get("/admin/rate-tier/list")
    assert resp.status_code == 200, resp.text
    tiers = {t["name"]: t for t in resp.json()["data"]}
    assert {
        n: (t["rpm"], t["tpm"], t["tpd"]) for n, t in tiers.items() if n in ("free", "pro", "enterprise")
    } == {
        "free": (100, None, 10_000),
        "pro": (1_000, None, 100_000),
        "enterprise": (10_000, None, 1_000_000),
    }
    assert not any(t["default"] for t in tiers.values())  # no AUTH_DEFAULT_RATE_TIER in these tests


async def test_save_creates_then_updates_only_the_measures_sent(
    admin: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    created = await _tier(admin, rpm=10, tpd=1000)
    assert (created["rpm"], created["tpm"], created["tpd"]) == (10, None, 1000)
    updated = await _tier(admin, name=created["name"], tpm=500)
    assert (updated["rpm"], updated["tpm"], updated["tpd"]) == (10, 500, 1000)
    cleared = await _tier(admin, name=created["name"], rpm=None)
    assert (cleared["rpm"], cleared["tpm"], cleared["tpd"]) == (None, 500, 1000)
    records = await _audit(sessions, "rate_tier.save", created["name"])
    assert [r.details["created"] for r in records] == [True, False, False]
    assert records[1].details["before"] == {"rpm": 10, "tpm": None, "tpd": 1000}


@pytest.mark.parametrize(
    "body",
    [
        {"name": "ok", "rpm": 0},
        {"name": "ok", "rpm": -1},
        {"name": "ok", "tpm": "100"},
        {"name": "ok", "tpd": True},
        {"name": "ok", "tpd": 1.5},
        {"name": "ok", "rpm": 9_223_372_036_854_775_808},
        {"name": ""},
        {"name": "has space"},
        {"name": "x" * 65},
        {"name": "ok", "rmp": 5},
        {"rpm": 5},
    ],
)
async def test_save_rejects_malformed_tiers_in_the_admin_envelope(
    admin: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], body: dict[str, Any]
) -> None:
    resp = await admin.post("/admin/rate-tier/save", json=body)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    async with sessions() as session:
        assert await session.get(RateTier, "ok") is None


async def test_tier_changes_need_a_platform_admin_key(admin: httpx.AsyncClient) -> None:
    user_key = (await _apply(admin))["api_key"]
    as_user = {"Authorization": f"Bearer {user_key}"}
    assert (
        await admin.post("/admin/rate-tier/save", json={"name": "x1"}, headers=as_user)
    ).status_code == 403
    assert (await admin.get("/admin/rate-tier/list", headers=as_user)).status_code == 403
    resp = await admin.post("/admin/api-key/limits", json={"id": 1, "tier": "free"}, headers=as_user)
    assert resp.status_code == 403


async def test_delete_is_refused_while_a_key_or_an_organisation_uses_the_tier(
    admin: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    tier = (await _tier(admin, rpm=5))["name"]
    key = await _apply(admin)
    assert (
        await admin.post("/admin/api-key/limits", json={"id": key["id"], "tier": tier})
    ).status_code == 200

    resp = await admin.post("/admin/rate-tier/delete", json={"name": tier})
    assert resp.status_code == 409, resp.text
    assert resp.json()["error"]["code"] == "rate_tier_in_use"
    assert "1 API key(s) and 0 organisation(s)" in resp.json()["error"]["message"]

    # moved off the key, onto its organisation: still refused
    assert (
        await admin.post("/admin/api-key/limits", json={"id": key["id"], "tier": None})
    ).status_code == 200
    org = await admin.post("/admin/org/limits", json={"org_id": key["org_id"], "tier": tier})
    assert org.status_code == 200, org.text
    resp = await admin.post("/admin/rate-tier/delete", json={"name": tier})
    assert resp.status_code == 409 and "0 API key(s) and 1 organisation(s)" in resp.json()["error"]["message"]

    assert (
        await admin.post("/admin/org/limits", json={"org_id": key["org_id"], "tier": None})
    ).status_code == 200
    resp = await admin.post("/admin/rate-tier/delete", json={"name": tier})
    assert resp.status_code == 200 and resp.json() == {"name": tier, "deleted": True}
    async with sessions() as session:
        assert await session.get(RateTier, tier) is None
    assert len(await _audit(sessions, "rate_tier.delete", tier)) == 1
    missing = await admin.post("/admin/rate-tier/delete", json={"name": tier})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "rate_tier_not_found"


async def test_a_revoked_keys_tier_does_not_block_the_delete(admin: httpx.AsyncClient) -> None:
    tier = (await _tier(admin, rpm=5))["name"]
    key = await _apply(admin)
    assert (
        await admin.post("/admin/api-key/limits", json={"id": key["id"], "tier": tier})
    ).status_code == 200
    assert (await admin.post("/admin/api-key/delete", json={"id": key["id"]})).status_code == 200
    assert (await admin.post("/admin/rate-tier/delete", json={"name": tier})).status_code == 200


# --- keys ---


async def test_a_new_key_is_not_limited(
    admin: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], key_service: KeyService
) -> None:
    key = await _apply(admin)
    assert key["limits"] == {"tier": None, "rpm": None, "tpm": None, "tpd": None}
    principal = await _principal(sessions, key_service, key["api_key"])
    assert principal.key_limits == NO_RATE_LIMITS and principal.org_limits == NO_RATE_LIMITS


async def test_key_tier_and_override_reach_the_principal_and_announce_the_key(
    admin: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    key_service: KeyService,
    events: RecordingEvents,
) -> None:
    key = await _apply(admin)
    resp = await admin.post("/admin/api-key/limits", json={"id": key["id"], "tier": "free", "tpd": 500})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["tier"], body["rpm"], body["tpm"], body["tpd"]) == ("free", None, None, 500)
    assert body["effective"] == {"tier": "free", "rpm": 100, "tpm": None, "tpd": 500}
    assert [(c.key_id, c.change) for c in events.published] == [(key["id"], "updated")]

    principal = await _principal(sessions, key_service, key["api_key"])
    assert principal.key_limits == RateLimits("free", rpm=100, tpm=0, tpd=500)
    assert principal.org_limits == NO_RATE_LIMITS

    # shown in the admin list and the GET
    listed = (await admin.get("/admin/api-key/list", params={"q": key["key_prefix"]})).json()["data"][0]
    assert listed["limits"] == {"tier": "free", "rpm": None, "tpm": None, "tpd": 500}
    assert (await admin.get("/admin/api-key/limits", params={"id": key["id"]})).json() == body

    # fields left out stay; null clears; the same values again announce nothing
    resp = await admin.post("/admin/api-key/limits", json={"id": key["id"], "rpm": 7})
    assert resp.json()["effective"] == {"tier": "free", "rpm": 7, "tpm": None, "tpd": 500}
    resp = await admin.post("/admin/api-key/limits", json={"id": key["id"], "rpm": 7})
    assert len(events.published) == 2
    resp = await admin.post("/admin/api-key/limits", json={"id": key["id"], "tier": None, "tpd": None})
    assert resp.json()["effective"] == {"tier": None, "rpm": 7, "tpm": None, "tpd": None}
    assert (await _principal(sessions, key_service, key["api_key"])).key_limits == RateLimits("", 7, 0, 0)

    records = await _audit(sessions, "api_key.limits", str(key["id"]))
    assert [r.details["changed"] for r in records] == [True, True, False, True]
    assert records[0].org_id == key["org_id"]
    assert records[0].details["after"] == {"tier": "free", "rpm": None, "tpm": None, "tpd": 500}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"tier": "no-such-tier", "rpm": 5}, 404, "rate_tier_not_found"),
        ({"tier": "free", "rpm": 0}, 400, None),
        ({"tier": "free", "tpm": "5"}, 400, None),
        ({"tier": "free", "burst": 5}, 400, None),
    ],
)
async def test_invalid_key_limits_write_nothing(
    admin: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    events: RecordingEvents,
    body: dict[str, Any],
    status: int,
    code: str | None,
) -> None:
    key = await _apply(admin)
    resp = await admin.post("/admin/api-key/limits", json={"id": key["id"], **body})
    assert resp.status_code == status, resp.text
    if code:
        assert resp.json()["error"]["code"] == code and resp.json()["error"]["param"] == "tier"
    async with sessions() as session:
        stored = await session.get(ApiKey, key["id"])
        assert stored is not None
        assert (stored.rate_tier, stored.rpm_limit, stored.tpm_limit) == (None, None, None)
    assert events.published == []
    assert await _audit(sessions, "api_key.limits", str(key["id"])) == []


async def test_unknown_or_revoked_keys_are_404(admin: httpx.AsyncClient) -> None:
    resp = await admin.post("/admin/api-key/limits", json={"id": 9_000_000_000, "tier": "free"})
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "api_key_not_found"
    key = await _apply(admin)
    await admin.post("/admin/api-key/delete", json={"id": key["id"]})
    assert (await admin.post("/admin/api-key/limits", json={"id": key["id"], "rpm": 1})).status_code == 404


# --- organisations ---


async def test_org_limits_reach_every_key_of_the_org_and_announce_them_all(
    admin: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    key_service: KeyService,
    events: RecordingEvents,
) -> None:
    first = await _apply(admin)
    org_id = first["org_id"]
    # a second usable key in the same organisation, and a revoked one
    async with sessions.begin() as session:
        second = await key_service.issue(
            session, name="second", org_id=org_id, user_id=first["user_id"], permissions=["read", "write"]
        )
        revoked = await key_service.issue(
            session, name="gone", org_id=org_id, user_id=first["user_id"], permissions=["read"]
        )
        await key_service.revoke(session, revoked.view.key.id)
    await admin.post("/admin/api-key/limits", json={"id": first["id"], "tier": "pro"})
    events.published.clear()

    resp = await admin.post("/admin/org/limits", json={"org_id": org_id, "tier": "enterprise", "tpm": 60_000})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "org_id": org_id,
        "tier": "enterprise",
        "rpm": None,
        "tpm": 60_000,
        "tpd": None,
        "effective": {"tier": "enterprise", "rpm": 10_000, "tpm": 60_000, "tpd": 1_000_000},
    }
    assert sorted(c.key_id for c in events.published) == sorted([first["id"], second.view.key.id])

    # the key's own limits and its organisation's are separate
    principal = await _principal(sessions, key_service, first["api_key"])
    assert principal.key_limits == RateLimits("pro", 1_000, 0, 100_000)
    assert principal.org_limits == RateLimits("enterprise", 10_000, 60_000, 1_000_000)
    other = await _principal(sessions, key_service, second.api_key)
    assert other.key_limits == NO_RATE_LIMITS and other.org_limits == principal.org_limits

    assert (await admin.get("/admin/org/limits", params={"org_id": org_id})).json() == resp.json()
    records = await _audit(sessions, "org.limits", org_id)
    assert len(records) == 1 and records[0].org_id == org_id and records[0].details["announced_keys"] == 2
    async with sessions() as session:
        org = await session.get(Organization, org_id)
        assert org is not None and (org.rate_tier, org.tpm_limit) == ("enterprise", 60_000)


async def test_unknown_organisation_is_404(admin: httpx.AsyncClient) -> None:
    resp = await admin.post("/admin/org/limits", json={"org_id": "org_nope", "tier": "free"})
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "organization_not_found"
    assert (await admin.get("/admin/org/limits", params={"org_id": "org_nope"})).status_code == 404


async def test_changing_a_tier_announces_the_keys_on_it_and_of_orgs_on_it(
    admin: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    key_service: KeyService,
    events: RecordingEvents,
) -> None:
    tier = (await _tier(admin, rpm=50))["name"]
    on_key, in_org, bystander = await _apply(admin), await _apply(admin), await _apply(admin)
    await admin.post("/admin/api-key/limits", json={"id": on_key["id"], "tier": tier})
    await admin.post("/admin/org/limits", json={"org_id": in_org["org_id"], "tier": tier})
    events.published.clear()

    await _tier(admin, name=tier, rpm=60)
    announced = {c.key_id for c in events.published}
    assert announced == {on_key["id"], in_org["id"]} and bystander["id"] not in announced
    assert (await _principal(sessions, key_service, on_key["api_key"])).key_limits.rpm == 60
    assert (await _principal(sessions, key_service, in_org["api_key"])).org_limits.rpm == 60
    events.published.clear()
    await _tier(admin, name=tier, rpm=60)  # unchanged: nothing to announce
    assert events.published == []


# --- the default tier ---


async def test_the_default_tier_applies_to_keys_without_one_only(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    hasher: KeyHasher,
    last_used: LastUsedRecorder,
    events: RecordingEvents,
    identity: SessionService,
) -> None:
    keys = KeyService(hasher, last_used, default_rate_tier="free")
    async with await _admin_client(engine, sessions, keys, hasher, events, identity) as admin:
        plain, tiered = await _apply(admin), await _apply(admin)
        await admin.post("/admin/api-key/limits", json={"id": tiered["id"], "tier": "pro"})
        assert (await _principal(sessions, keys, plain["api_key"])).key_limits == RateLimits(
            "free", 100, 0, 10_000
        )
        assert (await _principal(sessions, keys, plain["api_key"])).org_limits == NO_RATE_LIMITS
        assert (await _principal(sessions, keys, tiered["api_key"])).key_limits.tier == "pro"
        shown = (await admin.get("/admin/api-key/limits", params={"id": plain["id"]})).json()
        assert shown["tier"] is None and shown["effective"]["tier"] == "free"
        listed = {t["name"]: t["default"] for t in (await admin.get("/admin/rate-tier/list")).json()["data"]}
        assert listed["free"] is True and listed["pro"] is False

        resp = await admin.post("/admin/rate-tier/delete", json={"name": "free"})
        assert resp.status_code == 409 and "AUTH_DEFAULT_RATE_TIER" in resp.json()["error"]["message"]

        # changing the default tier announces the keys without a tier
        events.published.clear()
        await _tier(admin, name="free", tpm=1_000_000_000)
        announced = {c.key_id for c in events.published}
        assert plain["id"] in announced and tiered["id"] not in announced
        await _tier(admin, name="free", tpm=None)  # back as seeded, for the other tests


async def test_a_default_tier_that_does_not_exist_limits_nothing(
    sessions: async_sessionmaker[AsyncSession],
    hasher: KeyHasher,
    last_used: LastUsedRecorder,
    admin: httpx.AsyncClient,
) -> None:
    key = await _apply(admin)
    keys = KeyService(hasher, last_used, default_rate_tier="no-such-tier")
    assert (await _principal(sessions, keys, key["api_key"])).key_limits == NO_RATE_LIMITS
