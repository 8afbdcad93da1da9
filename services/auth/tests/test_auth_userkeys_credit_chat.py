"""/api/keys (the credit chat API): "Generate API Key" for a signed-in user, by session cookie or bearer
access token, with the credit chat API's answers and `{"error": "..."}` bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from auth_testkit import RecordingEvents, register
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tollgate.auth.app import build_app
from tollgate.auth.keys.models import ApiKey
from tollgate.auth.keys.service import KeyService
from tollgate.auth.sessions.service import SessionService
from tollgate.auth.web import AuthRuntime

ROUTE = "/api/keys"
JSON = {"content-type": "application/json"}


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


def cookie(token: str) -> dict[str, str]:
    return {"cookie": f"session={token}"}


def assert_credit_chat_error(resp: httpx.Response, status: int) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    return str(body["error"])


async def count_keys(sessions: async_sessionmaker[AsyncSession], user_id: str) -> int:
    async with sessions() as session:
        stmt = select(func.count()).select_from(ApiKey).where(ApiKey.user_id == user_id)
        return int((await session.execute(stmt)).scalar_one())


async def test_generate_with_the_session_cookie_then_list(
    http: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    registered = await register(http)
    token, user = registered["access_token"], registered["user"]
    resp = await http.post(ROUTE, content=b'{"name": "My API Key"}', headers={**cookie(token), **JSON})
    assert resp.status_code == 200, resp.text
    key: dict[str, Any] = resp.json()
    assert set(key) == {"id", "key", "name", "prefix", "created_at"}
    assert key["name"] == "My API Key" and key["key"].startswith(key["prefix"])

    async with sessions() as session:
        stored = await session.get(ApiKey, key["id"])
    assert stored is not None and stored.user_id == user["id"] and stored.org_id == user["org_id"]
    assert list(stored.permissions) == ["read", "write", "delete"] and stored.expires_at is None

    me = await http.get("/auth/me", headers={"Authorization": f"Bearer {key['key']}"})
    assert me.status_code == 200 and me.json()["user"]["id"] == user["id"]

    by_bearer = await http.get(ROUTE, headers={"Authorization": f"Bearer {token}"})
    assert by_bearer.status_code == 200, by_bearer.text
    listed = by_bearer.json()["keys"]
    assert [(k["id"], k["prefix"], k["revoked"]) for k in listed] == [(key["id"], key["prefix"], False)]
    assert key["key"] not in by_bearer.text
    assert (await http.get(ROUTE, headers=cookie(token))).json() == by_bearer.json()


async def test_revoke_through_the_credit_chat_api_announces_the_change(
    http: httpx.AsyncClient, events: RecordingEvents
) -> None:
    token = (await register(http))["access_token"]
    other = (await register(http))["access_token"]
    key = (await http.post(ROUTE, json={"name": "k"}, headers={"Authorization": f"Bearer {token}"})).json()
    assert_credit_chat_error(await http.delete(f"{ROUTE}/{key['id']}", headers=cookie(other)), 404)
    assert events.published == []
    gone = await http.delete(f"{ROUTE}/{key['id']}", headers=cookie(token))
    assert gone.status_code == 200 and gone.json() == {"id": key["id"], "revoked": True}
    assert [c.key_id for c in events.published] == [key["id"]]


async def test_unauthenticated_callers_get_the_credit_chat_apis_401(http: httpx.AsyncClient) -> None:
    assert_credit_chat_error(await http.post(ROUTE, json={"name": "k"}), 401)
    assert_credit_chat_error(await http.get(ROUTE, headers=cookie("x.y.z")), 401)
    assert_credit_chat_error(await http.get(ROUTE, headers={"Authorization": "Bearer tg_unknown"}), 401)
    # The cookie carries sessions only: an API key there is refused, not used.
    token = (await register(http))["access_token"]
    key = (await http.post(ROUTE, json={"name": "k"}, headers=cookie(token))).json()["key"]
    assert_credit_chat_error(await http.get(ROUTE, headers=cookie(key)), 401)
    # Ended sessions end the cookie too.
    assert (await http.post("/auth/logout", headers={"Authorization": f"Bearer {token}"})).status_code == 200
    assert_credit_chat_error(await http.get(ROUTE, headers=cookie(token)), 401)


@pytest.mark.parametrize(
    "raw",
    [
        b"{oops",
        b'"name"',
        b"{}",
        b'{"name": ""}',
        b'{"name": null}',
        b'{"name": "k", "permissions": ["read"]}',
    ],
)
async def test_malformed_bodies_are_credit_chat_400s_and_write_nothing(
    http: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], raw: bytes
) -> None:
    registered = await register(http)
    resp = await http.post(ROUTE, content=raw, headers={**cookie(registered["access_token"]), **JSON})
    assert_credit_chat_error(resp, 400)
    assert await count_keys(sessions, registered["user"]["id"]) == 0


async def test_cookie_posts_must_be_json_so_cross_site_forms_cannot_mint_keys(
    http: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    registered = await register(http)
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        resp = await http.post(
            ROUTE,
            content=b'{"name": "csrf"}',
            headers={**cookie(registered["access_token"]), "content-type": content_type},
        )
        assert_credit_chat_error(resp, 400)
    assert await count_keys(sessions, registered["user"]["id"]) == 0


async def test_other_routes_keep_their_envelopes(http: httpx.AsyncClient) -> None:
    """The credit chat API's renderer is confined to /api/keys."""
    sloughgpt = await http.get("/auth/me")
    assert sloughgpt.status_code == 401 and sloughgpt.json()["error"]["code"] == "UNAUTHORIZED"
    openai = await http.get("/admin/api-key/list")
    assert openai.status_code == 401 and openai.json()["error"]["type"] == "authentication_error"
