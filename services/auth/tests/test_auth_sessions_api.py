"""Registration, login, /auth/me and the SloughGPT error envelope, over ASGI on real PostgreSQL."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest
from auth_testkit import PASSWORD, assert_seed_error, new_email, register
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.auth.accounts.models import Membership, Organization, User
from tollgate.auth.keys.schemas import ApplyKeyRequest
from tollgate.auth.keys.service import KeyService


async def _count_users(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(User))).scalar_one())


async def test_register_creates_an_owner_with_a_personal_org_and_a_token_pair(
    auth_http: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    email = new_email()
    body = await register(auth_http, email)
    user = body["user"]
    assert user["email"] == email.lower() and user["name"] == "Ada Lovelace" and user["role"] == "user"
    assert PASSWORD not in json.dumps(body) and "password" not in user
    assert body["token_type"] == "bearer" and body["expires_in"] == 900
    assert body["refresh_token"].startswith("tgr_") and body["access_token"].count(".") == 2
    async with sessions() as session:
        stored = await session.get(User, user["id"])
        org = await session.get(Organization, user["org_id"])
        membership = await session.get(Membership, (user["org_id"], user["id"]))
        token_hashes = (
            (
                await session.execute(
                    text(
                        "SELECT r.token_hash FROM refresh_tokens r"
                        " JOIN login_sessions s ON s.id = r.session_id WHERE s.user_id = :u"
                    ),
                    {"u": user["id"]},
                )
            )
            .scalars()
            .all()
        )
    assert stored is not None and stored.password_hash is not None
    assert stored.password_hash.startswith("$argon2id$") and PASSWORD not in stored.password_hash
    assert org is not None and org.personal
    assert membership is not None and membership.role == "owner"
    assert token_hashes == [hashlib.sha256(body["refresh_token"].encode()).hexdigest()]


async def test_a_taken_email_is_a_conflict_whatever_its_case(auth_http: httpx.AsyncClient) -> None:
    email = new_email()
    await register(auth_http, email)
    again = await auth_http.post(
        "/auth/register", json={"email": email.upper(), "password": PASSWORD, "name": "Other"}
    )
    error = assert_seed_error(again, 409, "CONFLICT")
    assert error["details"]["parameter"] == "email"


async def test_a_short_password_is_refused_and_nothing_is_written(
    auth_http: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    before = await _count_users(sessions)
    resp = await auth_http.post(
        "/auth/register", json={"email": new_email(), "password": "short7!", "name": "X"}
    )
    error = assert_seed_error(resp, 400, "INVALID_PARAMETER")
    assert error["details"] == {"reason": "weak_password", "parameter": "password"}
    assert await _count_users(sessions) == before


MALFORMED = [
    ("/auth/register", b"{not json"),
    ("/auth/register", b"[]"),
    ("/auth/register", b'{"email": "a@example.com", "name": "A"}'),
    ("/auth/register", b'{"email": "a@example.com", "password": 123456789, "name": "A"}'),
    ("/auth/register", b'{"email": "not-an-email", "password": "long-enough-1", "name": "A"}'),
    (
        "/auth/register",
        b'{"email": "a@example.com", "password": "long-enough-1", "name": "A", "admin": true}',
    ),
    ("/auth/register", b""),
    ("/auth/login", b'{"email": "a@example.com"}'),
    ("/auth/login", b'"a string"'),
    ("/auth/token", b'{"username": "a@example.com"}'),
    ("/auth/token", b""),
    ("/auth/token", b'{"username": "a@example.com", "password": "x", "grant_type": "client_credentials"}'),
    ("/auth/refresh", b"{not json"),
    ("/auth/refresh", b'{"refresh_token": 5}'),
]


@pytest.mark.parametrize(("path", "raw"), MALFORMED)
async def test_malformed_bodies_are_400_in_sloughgpts_envelope_and_write_nothing(
    auth_http: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], path: str, raw: bytes
) -> None:
    before = await _count_users(sessions)
    resp = await auth_http.post(path, content=raw, headers={"content-type": "application/json"})
    assert_seed_error(resp, 400, "INVALID_PARAMETER")
    assert await _count_users(sessions) == before


async def test_login_answers_a_token_pair_that_me_accepts(auth_http: httpx.AsyncClient) -> None:
    email = new_email()
    registered = await register(auth_http, email)
    resp = await auth_http.post("/auth/login", json={"email": email.lower(), "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    pair = resp.json()
    assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert pair["refresh_token"] != registered["refresh_token"]
    me = await auth_http.get("/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["auth"] == "access_token" and body["user"]["id"] == registered["user"]["id"]
    assert body["key"] is None
    assert body["organization"] == {
        "id": registered["user"]["org_id"],
        "name": "Ada Lovelace",
        "personal": True,
        "role": "owner",
    }


async def test_wrong_password_and_unknown_email_get_the_same_401(auth_http: httpx.AsyncClient) -> None:
    email = new_email()
    await register(auth_http, email)
    wrong = await auth_http.post("/auth/login", json={"email": email, "password": "not-the-password"})
    unknown = await auth_http.post("/auth/login", json={"email": new_email(), "password": PASSWORD})
    first = assert_seed_error(wrong, 401, "UNAUTHORIZED")
    second = assert_seed_error(unknown, 401, "UNAUTHORIZED")
    assert first["message"] == second["message"] and first["details"] == second["details"]


async def test_me_accepts_an_api_key_too(
    auth_http: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], key_service: KeyService
) -> None:
    async with sessions.begin() as session:
        issued = await key_service.apply(session, ApplyKeyRequest(name="keyed", email="k@example.com"))
    for headers in ({"Authorization": f"Bearer {issued.api_key}"}, {"X-API-Key": issued.api_key}):
        me = await auth_http.get("/auth/me", headers=headers)
        assert me.status_code == 200, me.text
        body = me.json()
        assert body["auth"] == "api_key" and body["user"]["id"] == issued.view.key.user_id
        assert body["organization"]["role"] == "owner"
        # the key itself (never its secret): a client tells a user's key from an admin key by it
        assert body["key"] == {
            "id": issued.view.key.id,
            "key_prefix": issued.view.key.key_prefix,
            "role": "user",
            "permissions": ["read", "write", "delete"],
        }


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer tg_not_a_real_key"},
        {"Authorization": "Bearer a.b.c"},
        {"Authorization": "Basic x"},
    ],
)
async def test_me_refuses_missing_or_bad_credentials(
    auth_http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    assert_seed_error(await auth_http.get("/auth/me", headers=headers), 401, "UNAUTHORIZED")


async def test_unknown_auth_routes_use_sloughgpts_envelope_and_admin_routes_keep_openai(
    auth_http: httpx.AsyncClient,
) -> None:
    assert_seed_error(await auth_http.get("/auth/nothing-here"), 404, "NOT_FOUND")
    admin = await auth_http.get("/admin/api-key/list")
    assert admin.status_code == 401
    assert set(admin.json()["error"]) == {"message", "type", "code", "param"}
