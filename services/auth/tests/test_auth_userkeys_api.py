"""/auth/api-keys (SloughGPT): a signed-in user's own keys, over ASGI on real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from auth_testkit import RecordingEvents, assert_seed_error, register
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tollgate.auth.accounts.models import Membership, Organization
from tollgate.auth.app import build_app
from tollgate.auth.keys.keygen import KeyHasher
from tollgate.auth.keys.models import ApiKey
from tollgate.auth.keys.service import KeyService
from tollgate.auth.sessions.service import SessionService
from tollgate.auth.web import AuthRuntime

ROUTE = "/auth/api-keys"


@pytest.fixture
def events() -> RecordingEvents:
    return RecordingEvents()


@pytest.fixture
async def http(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    key_service: KeyService,
    identity: SessionService,
    events: RecordingEvents,
) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(AuthRuntime(sessions, key_service, events, identity), engine, CollectorRegistry())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://auth") as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def signed_in(http: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    body = await register(http)
    return body["access_token"], body["user"]


async def create(http: httpx.AsyncClient, credential: str, **body: Any) -> dict[str, Any]:
    resp = await http.post(ROUTE, json={"name": "ci", **body}, headers=bearer(credential))
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


async def count_keys(sessions: async_sessionmaker[AsyncSession], user_id: str) -> int:
    async with sessions() as session:
        stmt = select(func.count()).select_from(ApiKey).where(ApiKey.user_id == user_id)
        return int((await session.execute(stmt)).scalar_one())


async def test_a_signed_in_user_creates_a_key_that_authenticates_and_is_stored_hashed(
    http: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    key_service: KeyService,
    hasher: KeyHasher,
) -> None:
    token, user = await signed_in(http)
    created = await create(http, token, name="Production API Key")
    fields = {"id", "api_key", "key_prefix", "name", "permissions", "org_id", "expires_at", "created_at"}
    assert set(created) == fields
    assert created["api_key"].startswith("tg_") and created["api_key"].startswith(created["key_prefix"])
    assert created["permissions"] == ["read", "write", "delete"] and created["expires_at"] is None
    assert created["org_id"] == user["org_id"] and created["name"] == "Production API Key"

    async with sessions() as session:
        stored = await session.get(ApiKey, created["id"])
        assert stored is not None and stored.user_id == user["id"] and stored.role == "user"
        assert (
            stored.key_hash == hasher.hash(created["api_key"]) and created["api_key"] not in stored.key_hash
        )
        result = await key_service.authenticate(session, created["api_key"])
    assert result.principal is not None and result.principal.user_id == user["id"]


async def test_permissions_and_expiry_are_kept(
    http: httpx.AsyncClient, key_service: KeyService, sessions: async_sessionmaker[AsyncSession]
) -> None:
    token, _ = await signed_in(http)
    before = datetime.now(UTC)
    created = await create(http, token, permissions=["delete", "read", "read"], expires_days=365)
    assert created["permissions"] == ["read", "delete"]  # canonical order, once each
    expires_at = datetime.fromisoformat(created["expires_at"])
    assert before + timedelta(days=365) <= expires_at <= datetime.now(UTC) + timedelta(days=365)

    # Expiry is enforced where keys are used: moved into the past, the key is refused.
    async with sessions.begin() as session:
        await session.execute(
            text("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = :id"),
            {"id": created["id"]},
        )
    async with sessions() as session:
        result = await key_service.authenticate(session, created["api_key"])
    assert result.principal is None and result.reason == "expired"


async def test_list_shows_own_keys_without_secrets_and_revocation(
    http: httpx.AsyncClient, events: RecordingEvents
) -> None:
    token, _ = await signed_in(http)
    other_token, _ = await signed_in(http)
    first = await create(http, token, name="one")
    second = await create(http, token, name="two", permissions=["read"])
    await create(http, other_token, name="theirs")

    listed = await http.get(ROUTE, headers=bearer(token))
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["total"] == 2 and [k["id"] for k in body["data"]] == [second["id"], first["id"]]
    assert first["api_key"] not in listed.text and second["api_key"] not in listed.text
    assert body["data"][1]["key_prefix"] == first["key_prefix"] and body["data"][1]["revoked"] is False

    deleted = await http.delete(f"{ROUTE}/{first['id']}", headers=bearer(token))
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"id": first["id"], "revoked": True}
    assert [(c.key_id, c.change) for c in events.published] == [(first["id"], "revoked")]
    after = (await http.get(ROUTE, headers=bearer(token))).json()["data"]
    assert {k["id"]: k["revoked"] for k in after} == {first["id"]: True, second["id"]: False}
    revoked = await http.get("/auth/me", headers=bearer(first["api_key"]))
    assert assert_seed_error(revoked, 401, "UNAUTHORIZED")["details"]["reason"] == "revoked"


async def test_someone_elses_key_is_not_found_and_stays_active(
    http: httpx.AsyncClient, events: RecordingEvents
) -> None:
    token, _ = await signed_in(http)
    victim_token, _ = await signed_in(http)
    victims = await create(http, victim_token)
    for key_id in (victims["id"], 999_999_999):
        resp = await http.delete(f"{ROUTE}/{key_id}", headers=bearer(token))
        error = assert_seed_error(resp, 404, "NOT_FOUND")
        assert error["message"] == f"No API key with id {key_id}."  # the same words either way
    assert events.published == []
    assert (await http.get("/auth/me", headers=bearer(victims["api_key"]))).status_code == 200
    assert (await http.get(ROUTE, headers=bearer(token))).json() == {"data": [], "total": 0}


async def test_api_keys_act_within_their_permissions(
    http: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    token, user = await signed_in(http)
    reader = await create(http, token, permissions=["read"])
    writer = await create(http, token, permissions=["read", "write"])

    refused = await http.post(ROUTE, json={"name": "x"}, headers=bearer(reader["api_key"]))
    assert assert_seed_error(refused, 403, "FORBIDDEN")["details"]["reason"] == "permission_denied"
    assert (await http.get(ROUTE, headers=bearer(reader["api_key"]))).json()["total"] == 2
    no_delete = await http.delete(f"{ROUTE}/{reader['id']}", headers=bearer(writer["api_key"]))
    assert_seed_error(no_delete, 403, "FORBIDDEN")

    minted = await create(http, writer["api_key"], permissions=["read"])
    assert minted["org_id"] == user["org_id"]
    assert await count_keys(sessions, user["id"]) == 3
    # An X-API-Key header works like the bearer one (SloughGPT).
    listed = await http.get(ROUTE, headers={"X-API-Key": writer["api_key"]})
    assert listed.json()["total"] == 3


async def test_credentials_are_required_and_checked(http: httpx.AsyncClient) -> None:
    token, _ = await signed_in(http)
    assert_seed_error(await http.post(ROUTE, json={"name": "x"}), 401, "UNAUTHORIZED")
    assert_seed_error(await http.get(ROUTE, headers=bearer("tg_not-a-key")), 401, "UNAUTHORIZED")
    assert_seed_error(await http.get(ROUTE, headers=bearer("a.b.c")), 401, "UNAUTHORIZED")
    assert (await http.post("/auth/logout", headers=bearer(token))).status_code == 200
    ended = await http.post(ROUTE, json={"name": "x"}, headers=bearer(token))
    assert assert_seed_error(ended, 401, "UNAUTHORIZED")["details"]["reason"] == "session_revoked"


async def test_the_organisation_header_selects_an_organisation_the_user_belongs_to(
    http: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    token, user = await signed_in(http)
    _, stranger = await signed_in(http)
    team = "org_team_" + user["id"][-8:]
    async with sessions.begin() as session:
        session.add(Organization(id=team, name="Team", personal=False))
        await session.flush()
        session.add(Membership(org_id=team, user_id=user["id"], role="member"))

    in_team = await http.post(
        ROUTE, json={"name": "t"}, headers={**bearer(token), "Swarms-Organization": team}
    )
    assert in_team.status_code == 201, in_team.text
    assert in_team.json()["org_id"] == team
    team_list = (await http.get(ROUTE, headers={**bearer(token), "Swarms-Organization": team})).json()
    assert [k["id"] for k in team_list["data"]] == [in_team.json()["id"]]
    assert (await http.get(ROUTE, headers=bearer(token))).json()["total"] == 0  # personal org

    foreign = await http.post(
        ROUTE, json={"name": "t"}, headers={**bearer(token), "Swarms-Organization": stranger["org_id"]}
    )
    assert assert_seed_error(foreign, 403, "FORBIDDEN")["details"]["reason"] == "not_a_member"
    # A key stays in its own organisation even where its user could go further.
    key = in_team.json()["api_key"]
    personal = await http.get(ROUTE, headers={**bearer(key), "Swarms-Organization": user["org_id"]})
    assert assert_seed_error(personal, 403, "FORBIDDEN")["details"]["reason"] == "organization_mismatch"


@pytest.mark.parametrize(
    ("raw", "parameter"),
    [
        (b"{not json", None),
        (b"[]", None),
        (b"{}", "name"),
        (b'{"name": ""}', "name"),
        (b'{"name": 7}', "name"),
        (b'{"name": "' + b"x" * 101 + b'"}', "name"),
        (b'{"name": "k", "permissions": ["read", "admin"]}', "permissions.1"),
        (b'{"name": "k", "permissions": []}', "permissions"),
        (b'{"name": "k", "permissions": "read"}', "permissions"),
        (b'{"name": "k", "expires_days": 0}', "expires_days"),
        (b'{"name": "k", "expires_days": 3651}', "expires_days"),
        (b'{"name": "k", "expires_days": "30"}', "expires_days"),
        (b'{"name": "k", "expires_days": 1.5}', "expires_days"),
        (b'{"name": "k", "role": "admin"}', "role"),
    ],
)
async def test_malformed_bodies_are_400_and_write_nothing(
    http: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], raw: bytes, parameter: str | None
) -> None:
    token, user = await signed_in(http)
    resp = await http.post(ROUTE, content=raw, headers={**bearer(token), "content-type": "application/json"})
    error = assert_seed_error(resp, 400, "INVALID_PARAMETER")
    assert error["details"].get("parameter") == parameter
    assert await count_keys(sessions, user["id"]) == 0


async def test_a_malformed_key_id_is_400(http: httpx.AsyncClient) -> None:
    token, _ = await signed_in(http)
    for bad in ("abc", "0", "99999999999999999999"):
        assert_seed_error(
            await http.delete(f"{ROUTE}/{bad}", headers=bearer(token)), 400, "INVALID_PARAMETER"
        )
