"""/auth/orgs over ASGI on the scratch database: team organisations, members, invitations, the
organisation header, and organisation admins on the admin routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from auth_testkit import RecordingEvents, assert_seed_error, register
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tollgate.auth.app import build_app
from tollgate.auth.keys.schemas import ApplyKeyRequest
from tollgate.auth.keys.service import KeyService
from tollgate.auth.sessions.service import SessionService
from tollgate.auth.web import AuthRuntime


@dataclass
class Api:
    client: httpx.AsyncClient
    events: RecordingEvents
    admin_key: str
    registry: CollectorRegistry  # served on the metrics port in production (runner.serve)


@pytest.fixture
async def api(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    key_service: KeyService,
    identity: SessionService,
) -> AsyncIterator[Api]:
    async with sessions.begin() as session:
        issued = await key_service.apply(session, ApplyKeyRequest(name="orgs-admin", role="admin"))
    events = RecordingEvents()
    registry = CollectorRegistry()
    app = build_app(AuthRuntime(sessions, key_service, events, identity), engine, registry)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://auth") as client:
        yield Api(client, events, issued.api_key, registry)


def bearer(token: str, org: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if org:
        headers["Swarms-Organization"] = org
    return headers


async def team(api: Api, owner: dict[str, Any]) -> str:
    resp = await api.client.post("/auth/orgs", json={"name": "Acme"}, headers=bearer(owner["access_token"]))
    assert resp.status_code == 201, resp.text
    assert resp.json()["role"] == "owner" and resp.json()["personal"] is False
    return str(resp.json()["id"])


async def add(api: Api, actor: dict[str, Any], org: str, who: dict[str, Any], role: str) -> httpx.Response:
    body = {"email": who["user"]["email"], "role": role}
    return await api.client.post(
        f"/auth/orgs/{org}/members", json=body, headers=bearer(actor["access_token"])
    )


async def test_create_list_and_add_members(api: Api) -> None:
    ada, bob = await register(api.client), await register(api.client)
    org = await team(api, ada)
    mine = (await api.client.get("/auth/orgs", headers=bearer(ada["access_token"]))).json()
    assert {(o["personal"], o["role"]) for o in mine["data"]} == {(True, "owner"), (False, "owner")}
    added = await add(api, ada, org, bob, "member")
    assert added.status_code == 201, added.text
    assert_seed_error(await add(api, ada, org, bob, "admin"), 409, "CONFLICT")
    members = (await api.client.get(f"/auth/orgs/{org}/members", headers=bearer(bob["access_token"]))).json()
    assert {m["user_id"]: m["role"] for m in members["data"]} == {
        ada["user"]["id"]: "owner",
        bob["user"]["id"]: "member",
    }
    # a member does not manage members
    carol = await register(api.client)
    error = assert_seed_error(await add(api, bob, org, carol, "member"), 403, "FORBIDDEN")
    assert error["details"]["reason"] == "org_admin_required"
    metrics = generate_latest(api.registry).decode()
    assert 'auth_org_changes_total{action="member.add"} 1.0' in metrics
    assert 'auth_org_changes_total{action="org.create"} 1.0' in metrics


async def test_personal_organisations_take_no_members(api: Api) -> None:
    ada, bob = await register(api.client), await register(api.client)
    error = assert_seed_error(await add(api, ada, ada["user"]["org_id"], bob, "member"), 409, "CONFLICT")
    assert error["details"]["reason"] == "personal_organization"


async def test_last_owner_and_owner_only_rules(api: Api) -> None:
    ada, bob = await register(api.client), await register(api.client)
    org = await team(api, ada)
    assert (await add(api, ada, org, bob, "admin")).status_code == 201
    ada_id, bob_id = ada["user"]["id"], bob["user"]["id"]
    demote = await api.client.patch(
        f"/auth/orgs/{org}/members/{ada_id}", json={"role": "member"}, headers=bearer(bob["access_token"])
    )
    assert assert_seed_error(demote, 403, "FORBIDDEN")["details"]["reason"] == "owner_required"
    self_demote = await api.client.patch(
        f"/auth/orgs/{org}/members/{ada_id}", json={"role": "admin"}, headers=bearer(ada["access_token"])
    )
    assert assert_seed_error(self_demote, 409, "CONFLICT")["details"]["reason"] == "last_owner"
    leave = await api.client.delete(f"/auth/orgs/{org}/members/{ada_id}", headers=bearer(ada["access_token"]))
    assert assert_seed_error(leave, 409, "CONFLICT")["details"]["reason"] == "last_owner"
    promote = await api.client.patch(
        f"/auth/orgs/{org}/members/{bob_id}", json={"role": "owner"}, headers=bearer(ada["access_token"])
    )
    assert promote.status_code == 200 and promote.json()["role"] == "owner"
    left = await api.client.delete(f"/auth/orgs/{org}/members/{ada_id}", headers=bearer(ada["access_token"]))
    assert left.status_code == 200, left.text
    members = (await api.client.get(f"/auth/orgs/{org}/members", headers=bearer(bob["access_token"]))).json()
    assert [m["user_id"] for m in members["data"]] == [bob_id]


async def test_invitation_is_hashed_single_use_and_for_its_email(
    api: Api, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ada, bob, eve = await register(api.client), await register(api.client), await register(api.client)
    org = await team(api, ada)
    invited = await api.client.post(
        f"/auth/orgs/{org}/invitations",
        json={"email": bob["user"]["email"], "role": "admin"},
        headers=bearer(ada["access_token"]),
    )
    assert invited.status_code == 201, invited.text
    token = invited.json()["token"]
    async with sessions() as session:
        stored = (
            await session.execute(
                text("SELECT token_hash FROM org_invitations WHERE org_id = :o"), {"o": org}
            )
        ).scalar_one()
    assert token not in stored
    pending = (
        await api.client.get(f"/auth/orgs/{org}/invitations", headers=bearer(ada["access_token"]))
    ).json()
    assert pending["total"] == 1 and "token" not in pending["data"][0]
    wrong = await api.client.post(
        "/auth/invitations/accept", json={"token": token}, headers=bearer(eve["access_token"])
    )
    assert assert_seed_error(wrong, 403, "FORBIDDEN")["details"]["reason"] == "invitation_email_mismatch"
    accepted = await api.client.post(
        "/auth/invitations/accept", json={"token": token}, headers=bearer(bob["access_token"])
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["organization"] == {**accepted.json()["organization"], "id": org, "role": "admin"}
    again = await api.client.post(
        "/auth/invitations/accept", json={"token": token}, headers=bearer(bob["access_token"])
    )
    assert_seed_error(again, 404, "NOT_FOUND")


async def test_expired_invitation_is_refused(api: Api, sessions: async_sessionmaker[AsyncSession]) -> None:
    ada, bob = await register(api.client), await register(api.client)
    org = await team(api, ada)
    invited = await api.client.post(
        f"/auth/orgs/{org}/invitations",
        json={"email": bob["user"]["email"]},
        headers=bearer(ada["access_token"]),
    )
    async with sessions.begin() as session:
        await session.execute(
            text("UPDATE org_invitations SET expires_at = now() - interval '1 second' WHERE id = :i"),
            {"i": invited.json()["id"]},
        )
    resp = await api.client.post(
        "/auth/invitations/accept",
        json={"token": invited.json()["token"]},
        headers=bearer(bob["access_token"]),
    )
    assert assert_seed_error(resp, 400, "INVALID_PARAMETER")["details"]["reason"] == "invitation_expired"


async def test_org_header_selects_the_organisation(api: Api) -> None:
    ada, bob = await register(api.client), await register(api.client)
    org = await team(api, ada)
    me = await api.client.get("/auth/me", headers=bearer(ada["access_token"], org))
    assert me.json()["organization"]["id"] == org and me.json()["organization"]["role"] == "owner"
    assert_seed_error(
        await api.client.get("/auth/me", headers=bearer(bob["access_token"], org)), 403, "FORBIDDEN"
    )
    key = await api.client.post(
        "/auth/api-keys", json={"name": "team"}, headers=bearer(ada["access_token"], org)
    )
    assert key.status_code == 201 and key.json()["org_id"] == org
    refused = await api.client.post(
        "/auth/api-keys", json={"name": "x"}, headers=bearer(bob["access_token"], org)
    )
    assert_seed_error(refused, 403, "FORBIDDEN")


async def test_removal_revokes_the_members_keys(api: Api) -> None:
    ada, bob = await register(api.client), await register(api.client)
    org = await team(api, ada)
    assert (await add(api, ada, org, bob, "member")).status_code == 201
    key = await api.client.post(
        "/auth/api-keys", json={"name": "b"}, headers=bearer(bob["access_token"], org)
    )
    assert key.status_code == 201
    promoted = await api.client.patch(
        f"/auth/orgs/{org}/members/{bob['user']['id']}",
        json={"role": "admin"},
        headers=bearer(ada["access_token"]),
    )
    assert promoted.status_code == 200
    assert [(c.key_id, c.change) for c in api.events.published] == [(key.json()["id"], "updated")]
    removed = await api.client.delete(
        f"/auth/orgs/{org}/members/{bob['user']['id']}", headers=bearer(ada["access_token"])
    )
    assert removed.json() == {"user_id": bob["user"]["id"], "removed": True, "revoked_keys": 1}
    assert api.events.published[-1].change == "revoked"
    me = await api.client.get("/auth/me", headers=bearer(key.json()["api_key"]))
    assert_seed_error(me, 401, "UNAUTHORIZED")


async def test_org_admin_on_admin_routes(api: Api) -> None:
    ada, bob = await register(api.client), await register(api.client)
    org = await team(api, ada)
    assert (await add(api, ada, org, bob, "member")).status_code == 201
    ada_key = (
        await api.client.post("/auth/api-keys", json={"name": "a"}, headers=bearer(ada["access_token"], org))
    ).json()
    bob_key = (
        await api.client.post("/auth/api-keys", json={"name": "b"}, headers=bearer(bob["access_token"], org))
    ).json()
    other = (
        await api.client.post("/auth/api-keys", json={"name": "o"}, headers=bearer(bob["access_token"]))
    ).json()
    as_ada = bearer(ada_key["api_key"])
    listed = (await api.client.get("/admin/api-key/list?limit=100", headers=as_ada)).json()
    assert {k["id"] for k in listed["data"]} == {ada_key["id"], bob_key["id"]}
    applied = await api.client.post("/admin/api-key/apply", json={"name": "svc"}, headers=as_ada)
    assert applied.status_code == 200 and applied.json()["org_id"] == org
    escalate = await api.client.post(
        "/admin/api-key/apply", json={"name": "x", "role": "admin"}, headers=as_ada
    )
    assert (escalate.status_code, escalate.json()["error"]["code"]) == (403, "platform_admin_required")
    foreign = await api.client.post("/admin/api-key/delete", json={"id": other["id"]}, headers=as_ada)
    assert foreign.status_code == 404
    assert (await api.client.post("/admin/group/save", json={"name": "g"}, headers=as_ada)).status_code == 403
    assert (await api.client.get("/admin/group/list", headers=as_ada)).status_code == 200
    member = await api.client.get("/admin/api-key/list", headers=bearer(bob_key["api_key"]))
    assert (member.status_code, member.json()["error"]["code"]) == (403, "admin_required")
    audit = (await api.client.get("/admin/audit/list?limit=500", headers=as_ada)).json()
    assert audit["total"] >= 4 and {e["org_id"] for e in audit["data"]} == {org}
    everything = (await api.client.get("/admin/audit/list?limit=500", headers=bearer(api.admin_key))).json()
    assert everything["total"] > audit["total"]
