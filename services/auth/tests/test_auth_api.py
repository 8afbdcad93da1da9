"""The admin api-key routes end to end over ASGI, on a real scratch PostgreSQL database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from auth_testkit import RecordingEvents
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tollgate.auth.accounts.models import Organization, User
from tollgate.auth.app import build_app
from tollgate.auth.keys.bootstrap import ensure_bootstrap_admin
from tollgate.auth.keys.keygen import KeyHasher
from tollgate.auth.keys.last_used import LastUsedRecorder
from tollgate.auth.keys.service import KeyService, utcnow
from tollgate.auth.sessions.service import SessionService
from tollgate.auth.web import AuthRuntime

ADMIN_KEY = "tg_admin_key_for_the_api_tests_0123456789"


@pytest.fixture
def events() -> RecordingEvents:
    return RecordingEvents()


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://auth")


@pytest.fixture
async def admin(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    key_service: KeyService,
    hasher: KeyHasher,
    events: RecordingEvents,
    identity: SessionService,
) -> AsyncIterator[httpx.AsyncClient]:
    async with sessions.begin() as session:
        await ensure_bootstrap_admin(session, hasher, ADMIN_KEY, utcnow())
    app = build_app(AuthRuntime(sessions, key_service, events, identity), engine, CollectorRegistry())
    async with _client(app) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
        yield client


async def _apply(admin: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    body.setdefault("name", f"user-{uuid.uuid4().hex[:8]}")
    resp = await admin.post("/admin/api-key/apply", json=body)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def test_apply_creates_user_personal_org_and_key_shown_once(
    admin: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], hasher: KeyHasher
) -> None:
    created = await _apply(admin, name="jack", group_id=1, role="user", email="", month_quota=1.00)
    key = created["api_key"]
    assert key.startswith("tg_") and created["key_prefix"] == key[:11]
    assert created["month_quota"] == 1.0 and created["month_quota_micros"] == 1_000_000
    assert (created["role"], created["group_id"], created["email"]) == ("user", 1, None)
    async with sessions() as session:
        org = await session.get(Organization, created["org_id"])
        user = await session.get(User, created["user_id"])
        stored = (
            await session.execute(text("SELECT key_hash FROM api_keys WHERE id = :id"), {"id": created["id"]})
        ).scalar_one()
    assert org is not None and org.personal and org.id.startswith("org_")
    assert user is not None and user.org_id == org.id and user.id.startswith("usr_")
    assert stored == hasher.hash(key) and key not in stored
    listed = await admin.get("/admin/api-key/list", params={"q": created["key_prefix"]})
    assert "api_key" not in listed.json()["data"][0]


async def test_the_new_key_authenticates_and_a_user_key_is_not_admin(admin: httpx.AsyncClient) -> None:
    user_key = (await _apply(admin, role="user"))["api_key"]
    resp = await admin.get("/admin/api-key/list", headers={"Authorization": f"Bearer {user_key}"})
    assert resp.status_code == 403
    assert resp.json()["error"]["type"] == "permission_error"
    admin_key = (await _apply(admin, role="admin"))["api_key"]
    resp = await admin.get("/admin/api-key/list", headers={"Authorization": "", "X-API-Key": admin_key})
    assert resp.status_code == 200


@pytest.mark.parametrize(
    ("headers", "code"),
    [({"Authorization": ""}, "missing_api_key"), ({"Authorization": "Bearer tg_nope"}, "invalid_api_key")],
)
async def test_missing_or_unknown_key_is_401_in_openai_envelope(
    admin: httpx.AsyncClient, headers: dict[str, str], code: str
) -> None:
    resp = await admin.post("/admin/api-key/apply", json={"name": "x"}, headers=headers)
    assert resp.status_code == 401
    error = resp.json()["error"]
    assert error["code"] == code and error["type"] == "authentication_error"
    assert set(error) == {"message", "type", "code", "param"}


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        b"[]",
        b'{"name": 5}',
        b'{"name": "' + b"x" * 101 + b'"}',
        b'{"name": "a", "month_quota": -1}',
        b'{"name": "a", "role": "owner"}',
    ],
)
async def test_malformed_apply_is_400_and_writes_nothing(
    admin: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], content: bytes
) -> None:
    async with sessions() as session:
        before = (await session.execute(select(func.count()).select_from(User))).scalar_one()
    resp = await admin.post(
        "/admin/api-key/apply", content=content, headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["type"] == "invalid_request_error"
    async with sessions() as session:
        assert (await session.execute(select(func.count()).select_from(User))).scalar_one() == before


async def test_a_failure_midway_leaves_nothing_half_written(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    last_used: LastUsedRecorder,
    identity: SessionService,
) -> None:
    class CollidingHasher(KeyHasher):
        """Every key hashes the same, so the second key insert violates the unique index."""

        def hash(self, api_key: str) -> str:
            return "f" * 64 if not api_key.startswith("tg_admin") else super().hash(api_key)

    hasher = CollidingHasher("test-pepper")
    app = build_app(
        AuthRuntime(sessions, KeyService(hasher, last_used), RecordingEvents(), identity),
        engine,
        CollectorRegistry(),
    )
    name = f"collide-{uuid.uuid4().hex[:6]}"
    async with _client(app) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
        async with sessions.begin() as session:
            await ensure_bootstrap_admin(session, hasher, ADMIN_KEY, utcnow())
        first = await client.post("/admin/api-key/apply", json={"name": name})
        assert first.status_code == 200
        with pytest.raises(IntegrityError):
            await client.post("/admin/api-key/apply", json={"name": name})
    async with sessions() as session:
        users = (await session.execute(select(func.count()).where(User.name == name))).scalar_one()
        orgs = (await session.execute(select(func.count()).where(Organization.name == name))).scalar_one()
        await session.execute(text("DELETE FROM api_keys WHERE key_hash = :h"), {"h": "f" * 64})
        await session.commit()
    assert (users, orgs) == (1, 1)


async def test_update_changes_fields_and_announces_after_commit(
    admin: httpx.AsyncClient, events: RecordingEvents, hasher: KeyHasher
) -> None:
    created = await _apply(admin, group_id=1, month_quota=1)
    resp = await admin.post(
        "/admin/api-key/update",
        json={"id": created["id"], "name": "jack", "month_quota": 10.00, "group_id": None, "role": "admin"},
    )
    assert resp.status_code == 200, resp.text
    info = resp.json()
    assert (info["name"], info["month_quota_micros"], info["group_id"], info["role"]) == (
        "jack",
        10_000_000,
        None,
        "admin",
    )
    assert "api_key" not in info
    assert [(c.key_id, c.change, c.key_hash) for c in events.published] == [
        (created["id"], "updated", hasher.hash(created["api_key"]))
    ]
    # nothing changed, nothing announced
    same = await admin.post("/admin/api-key/update", json={"id": created["id"], "name": "jack"})
    assert same.status_code == 200 and len(events.published) == 1


async def test_unknown_ids_are_404_and_announce_nothing(
    admin: httpx.AsyncClient, events: RecordingEvents
) -> None:
    for route in ("update", "delete"):
        resp = await admin.post(f"/admin/api-key/{route}", json={"id": 987654321})
        assert resp.status_code == 404
        assert resp.json()["error"]["param"] == "id"
    assert events.published == []


async def test_delete_revokes_idempotently_and_hides_the_key(
    admin: httpx.AsyncClient, events: RecordingEvents
) -> None:
    created = await _apply(admin)
    for _ in range(2):
        resp = await admin.post("/admin/api-key/delete", json={"id": created["id"]})
        assert resp.status_code == 200
        assert resp.json() == {"id": created["id"], "deleted": True}
    assert [c.change for c in events.published] == ["revoked", "revoked"]
    assert events.published[0].changed_at == events.published[1].changed_at
    revoked_auth = {"Authorization": f"Bearer {created['api_key']}"}
    refused = await admin.get("/admin/api-key/list", headers=revoked_auth)
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]
    listed = await admin.get("/admin/api-key/list", params={"q": created["key_prefix"]})
    assert listed.json()["total"] == 0
    gone = await admin.post("/admin/api-key/update", json={"id": created["id"], "name": "x"})
    assert gone.status_code == 404


async def test_list_filters_pages_and_accepts_seed_blank_params(admin: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:8]
    a = await _apply(admin, name=f"{tag}-ann", group_id=7, role="user", email=f"ann@{tag}.example")
    b = await _apply(admin, name=f"{tag}-bob", group_id=7, role="admin")
    c = await _apply(admin, name=f"{tag}-cid", group_id=8, role="user")

    async def ids(**params: Any) -> tuple[list[int], int]:
        resp = await admin.get("/admin/api-key/list", params={"q": tag, **params})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        return [k["id"] for k in body["data"]], body["total"]

    assert await ids() == ([c["id"], b["id"], a["id"]], 3)  # newest first
    assert await ids(group_id=7) == ([b["id"], a["id"]], 2)
    assert await ids(role="admin") == ([b["id"]], 1)
    assert await ids(name=f"{tag}-CID") == ([c["id"]], 1)
    assert await ids(limit=1, offset=1) == ([b["id"]], 3)
    by_email = await admin.get("/admin/api-key/list", params={"q": f"ann@{tag}"})
    assert [k["email"] for k in by_email.json()["data"]] == [f"ann@{tag}.example"]
    seed = await admin.get(f"/admin/api-key/list?q={tag}&name=&group_id=&role=&limit=10&offset=")
    assert seed.status_code == 200
    assert (seed.json()["total"], seed.json()["limit"], seed.json()["offset"]) == (3, 10, 0)
    wildcard = await admin.get("/admin/api-key/list", params={"q": "%"})
    assert wildcard.status_code == 200 and wildcard.json()["total"] == 0


async def test_bad_list_params_are_400(admin: httpx.AsyncClient) -> None:
    for params in ({"limit": "0"}, {"limit": "x"}, {"role": "root"}, {"offset": "-3"}):
        resp = await admin.get("/admin/api-key/list", params=params)
        assert resp.status_code == 400, params


async def test_healthz_pings_the_database(admin: httpx.AsyncClient) -> None:
    resp = await admin.get("/healthz")
    assert resp.status_code == 200 and resp.json()["database"] == "ok"
