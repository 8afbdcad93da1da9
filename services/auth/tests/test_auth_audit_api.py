"""The audit log over ASGI on a scratch PostgreSQL: every admin action leaves one row, in the
action's transaction, with actor, address and request id, and never any key material."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from auth_testkit import PASSWORD, RecordingEvents, register
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tollgate.auth.app import build_app
from tollgate.auth.audit.service import scrub
from tollgate.auth.keys.bootstrap import ensure_bootstrap_admin
from tollgate.auth.keys.keygen import KeyHasher
from tollgate.auth.keys.service import KeyService, utcnow
from tollgate.auth.sessions.service import SessionService
from tollgate.auth.web import AuthRuntime

ADMIN_KEY = "tg_admin_key_for_the_audit_tests_0123456789"


@pytest.fixture
async def admin(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    key_service: KeyService,
    hasher: KeyHasher,
    identity: SessionService,
) -> AsyncIterator[httpx.AsyncClient]:
    async with sessions.begin() as session:
        await ensure_bootstrap_admin(session, hasher, ADMIN_KEY, utcnow())
    app = build_app(
        AuthRuntime(sessions, key_service, RecordingEvents(), identity), engine, CollectorRegistry()
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://auth") as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
        yield client


async def _admin_key_id(admin: httpx.AsyncClient) -> int:
    resp = await admin.get("/admin/api-key/list", params={"role": "admin", "q": ADMIN_KEY[:11]})
    return int(resp.json()["data"][0]["id"])


async def _rows(admin: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    resp = await admin.get("/admin/audit/list", params=params)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["data"])


async def _for_target(
    admin: httpx.AsyncClient, action: str, target_id: object, target_type: str = "api_key"
) -> list[dict[str, Any]]:
    rows = await _rows(admin, action=action, limit=500)
    return [r for r in rows if r["target_id"] == str(target_id) and r["target_type"] == target_type]


async def test_admin_key_actions_are_audited_with_actor_ip_and_request_id(admin: httpx.AsyncClient) -> None:
    actor = await _admin_key_id(admin)
    headers = {"X-Forwarded-For": "203.0.113.7", "X-Request-ID": "req_audit_test_1"}
    applied = await admin.post(
        "/admin/api-key/apply", json={"name": "audited", "group_id": 1}, headers=headers
    )
    key = applied.json()
    await admin.post("/admin/api-key/update", json={"id": key["id"], "name": "renamed"})
    secret = (await admin.post("/admin/api-key/secret", json={"id": key["id"]})).json()["secret_key"]
    await admin.post("/admin/api-key/models/authorize", json={"key_id": key["id"], "models": ["m1"]})
    await admin.post("/admin/api-key/delete", json={"id": key["id"]})

    [apply_row] = await _for_target(admin, "api_key.apply", key["id"])
    assert apply_row["actor_key_id"] == actor and apply_row["target_type"] == "api_key"
    assert apply_row["ip"] == "203.0.113.7" and apply_row["request_id"] == "req_audit_test_1"
    assert apply_row["details"]["name"] == "audited"
    for action in ("api_key.update", "api_key.secret", "grant.authorize", "api_key.delete"):
        [row] = await _for_target(admin, action, key["id"])
        assert row["actor_key_id"] == actor and row["ip"] == "127.0.0.1"
    [grant] = await _for_target(admin, "grant.authorize", key["id"])
    assert grant["details"] == {"changed": ["m1"]}
    everything = json.dumps(await _rows(admin, limit=500))
    assert key["api_key"] not in everything and secret not in everything and ADMIN_KEY not in everything


async def test_group_actions_and_filters(admin: httpx.AsyncClient) -> None:
    name = f"grp-{uuid.uuid4().hex[:8]}"
    group = (await admin.post("/admin/group/save", json={"name": name})).json()
    await admin.post("/admin/group/models/authorize", json={"group_id": group["id"], "models": ["m2"]})
    await admin.post("/admin/group/delete", json={"id": group["id"]})
    assert [r["details"] for r in await _for_target(admin, "group.save", group["id"], "group")] == [
        {"name": name}
    ]
    assert len(await _for_target(admin, "group.delete", group["id"], "group")) == 1
    assert len(await _for_target(admin, "grant.authorize", group["id"], "group")) == 1
    page = (await admin.get("/admin/audit/list", params={"action": "group.save", "limit": 1})).json()
    assert len(page["data"]) == 1 and page["total"] >= 1
    assert all(r["action"] == "group.save" for r in await _rows(admin, action="group.save"))
    none = (await admin.get("/admin/audit/list", params={"actor_key_id": 999_999_999})).json()
    assert none == {"data": [], "total": 0}


async def test_failed_actions_leave_no_row(admin: httpx.AsyncClient) -> None:
    before = (await admin.get("/admin/audit/list", params={"action": "api_key.delete"})).json()["total"]
    missing = await admin.post("/admin/api-key/delete", json={"id": 999_999_999})
    assert missing.status_code == 404
    after = (await admin.get("/admin/audit/list", params={"action": "api_key.delete"})).json()["total"]
    assert after == before


async def test_user_key_create_and_delete_are_audited(admin: httpx.AsyncClient) -> None:
    user = await register(admin)
    token = {"Authorization": f"Bearer {user['access_token']}"}
    created = await admin.post("/auth/api-keys", json={"name": "mine"}, headers=token)
    assert created.status_code == 201, created.text
    key_id = created.json()["id"]
    await admin.delete(f"/auth/api-keys/{key_id}", headers=token)
    [create_row] = await _for_target(admin, "user_api_key.create", key_id)
    [delete_row] = await _for_target(admin, "user_api_key.delete", key_id)
    for row in (create_row, delete_row):
        assert row["actor_user_id"] == user["user"]["id"] and row["actor_key_id"] is None
    assert created.json()["api_key"] not in json.dumps(
        [create_row, delete_row]
    ) and PASSWORD not in json.dumps(create_row)


async def test_audit_list_needs_an_admin_key(admin: httpx.AsyncClient) -> None:
    user_key = (await admin.post("/admin/api-key/apply", json={"name": "plain"})).json()["api_key"]
    resp = await admin.get("/admin/audit/list", headers={"Authorization": f"Bearer {user_key}"})
    assert resp.status_code == 403


def test_scrub_drops_fields_that_could_hold_secrets() -> None:
    details = {"name": "n", "api_key": "tg_x", "secret_key": "s", "password": "p", "key_hash": "h"}
    assert scrub(details) == {"name": "n"}
