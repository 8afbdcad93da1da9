"""Authenticate with a signed-in user's access token (JWT), over a real gRPC server and channel,
against the scratch database: the checks `/auth/me` makes, a live session, and the user's principal."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import jwt
import pytest
from auth_testkit import register
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tollgate.auth.grants.models import SUBJECT_GROUP
from tollgate.auth.grants.repository import GrantRepository
from tollgate.auth.grpc_server import AuthMetrics, AuthServicer
from tollgate.auth.keys.principal import AuthResult
from tollgate.auth.sessions.principal import TokenPrincipals, resolve_token
from tollgate.auth.sessions.repository import SessionSubject
from tollgate.auth.sessions.tokens import AccessClaims, TokenIssuer
from tollgate.common.auth_client import AuthClient
from tollgate.common.db import make_sessionmaker
from tollgate.common.errors import Unauthenticated
from tollgate.common.grpc import make_channel, make_server
from tollgate.contracts.v1 import auth_pb2, auth_pb2_grpc

TEST_JWT_SECRET = "test-jwt-secret-0123456789abcdef0123456789abcdef"  # conftest's `tokens` secret


class KeyLookups:
    """Stands in for the key service: a token must never be looked up as an API key."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def authenticate(self, session: AsyncSession, api_key: str) -> AuthResult:
        self.calls.append(api_key)
        return AuthResult(None, "unknown_key")


async def _serve(engine: AsyncEngine, servicer: AuthServicer) -> tuple[grpc.aio.Server, grpc.aio.Channel]:
    server = make_server("auth-test")
    auth_pb2_grpc.add_AuthServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, make_channel(f"127.0.0.1:{port}")


@pytest.fixture
def key_lookups() -> KeyLookups:
    return KeyLookups()


@pytest.fixture
async def channel(
    engine: AsyncEngine, tokens: TokenIssuer, key_lookups: KeyLookups
) -> AsyncIterator[grpc.aio.Channel]:
    read_sessions = make_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"))
    servicer = AuthServicer(
        read_sessions,
        key_lookups,  # type: ignore[arg-type]
        AuthMetrics(CollectorRegistry()),
        tokens=TokenPrincipals(tokens),
    )
    server, chan = await _serve(engine, servicer)
    try:
        yield chan
    finally:
        await chan.close()
        await server.stop(grace=None)


async def _authenticate(channel: grpc.aio.Channel, credential: str) -> auth_pb2.AuthenticateResponse:
    return await auth_pb2_grpc.AuthServiceStub(channel).Authenticate(
        auth_pb2.AuthenticateRequest(api_key=credential)
    )


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_a_live_token_yields_the_users_principal(
    channel: grpc.aio.Channel,
    auth_http: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    key_lookups: KeyLookups,
) -> None:
    user = await register(auth_http)
    token = user["access_token"]
    reply = await _authenticate(channel, token)
    assert reply.ok and reply.reason == ""
    p = reply.principal
    assert (p.key_id, p.org_id, p.user_id) == (0, user["user"]["org_id"], user["user"]["id"])
    assert (p.role, p.org_role, p.group_id) == ("user", "owner", 0)
    assert list(p.permissions) == ["read", "write", "delete"]
    assert (p.month_quota_micros, p.key_prefix) == (0, "")
    assert p.expires_at_unix == jwt.decode(token, options={"verify_signature": False})["exp"]
    assert not p.models_restricted
    assert key_lookups.calls == []


async def test_the_users_group_grants_restrict_the_token(
    channel: grpc.aio.Channel, auth_http: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    user = await register(auth_http)
    group_id = 7_000 + int(time.time_ns() % 1_000_000)
    async with sessions.begin() as session:
        await session.execute(
            text("UPDATE users SET group_id = :g, role = 'admin' WHERE id = :u"),
            {"g": group_id, "u": user["user"]["id"]},
        )
        await GrantRepository(session).add(SUBJECT_GROUP, group_id, ["sim-chat", "sim-embed"])
    p = (await _authenticate(channel, user["access_token"])).principal
    assert (p.group_id, p.role, p.models_restricted) == (group_id, "admin", True)
    assert sorted(p.granted_models) == ["sim-chat", "sim-embed"]


async def test_tampered_unsigned_and_foreign_tokens_are_invalid(
    channel: grpc.aio.Channel, auth_http: httpx.AsyncClient, key_lookups: KeyLookups
) -> None:
    token = (await register(auth_http))["access_token"]
    header, payload, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    changed = f"{header}.{_b64({**claims, 'sub': 'usr_someone_else', 'org': 'org_system'})}.{signature}"
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}."
    wrong_key = jwt.encode(claims, "not-the-secret-0123456789abcdef0123456789abcdef", algorithm="HS256")
    flipped = f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    for forged in (changed, unsigned, wrong_key, flipped, "a.b.c"):
        reply = await _authenticate(channel, forged)
        assert (reply.ok, reply.reason) == (False, "invalid_token"), forged
    assert key_lookups.calls == []  # never tried as API keys


async def test_an_expired_token_is_refused_as_expired(
    channel: grpc.aio.Channel, auth_http: httpx.AsyncClient
) -> None:
    token = (await register(auth_http))["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    now = int(time.time())
    expired = jwt.encode({**claims, "iat": now - 1000, "exp": now - 100}, TEST_JWT_SECRET, algorithm="HS256")
    reply = await _authenticate(channel, expired)
    assert (reply.ok, reply.reason) == (False, "expired")
    with pytest.raises(Unauthenticated, match="access token has expired"):
        await AuthClient(channel).authenticate(expired)


async def test_a_logged_out_session_or_a_replayed_refresh_token_ends_the_token(
    channel: grpc.aio.Channel, auth_http: httpx.AsyncClient
) -> None:
    user = await register(auth_http)
    token = user["access_token"]
    assert (await _authenticate(channel, token)).ok
    out = await auth_http.post("/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert out.status_code == 200, out.text
    assert ((reply := await _authenticate(channel, token)).ok, reply.reason) == (False, "revoked")
    with pytest.raises(Unauthenticated, match="session has ended"):
        await AuthClient(channel).authenticate(token)

    other = await register(auth_http)
    rotated = await auth_http.post("/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert rotated.status_code == 200, rotated.text
    fresh = rotated.json()["access_token"]
    assert (await _authenticate(channel, fresh)).ok
    replay = await auth_http.post("/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert replay.status_code == 401  # reuse revokes the whole family, the fresh token with it
    for ended in (fresh, other["access_token"]):
        assert (await _authenticate(channel, ended)).reason == "revoked"


async def test_a_user_removed_from_the_tokens_organisation_is_refused(
    channel: grpc.aio.Channel, auth_http: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    user = await register(auth_http)
    async with sessions.begin() as session:
        await session.execute(text("DELETE FROM memberships WHERE user_id = :u"), {"u": user["user"]["id"]})
    reply = await _authenticate(channel, user["access_token"])
    assert (reply.ok, reply.reason) == (False, "revoked")


async def test_without_a_token_verifier_tokens_are_refused_not_tried_as_keys(
    engine: AsyncEngine, auth_http: httpx.AsyncClient, key_lookups: KeyLookups
) -> None:
    token = (await register(auth_http))["access_token"]
    servicer = AuthServicer(
        make_sessionmaker(engine),
        key_lookups,  # type: ignore[arg-type]
        AuthMetrics(CollectorRegistry()),
    )
    server, chan = await _serve(engine, servicer)
    try:
        reply = await _authenticate(chan, token)
        assert (reply.ok, reply.reason) == (False, "invalid_token")
        assert (await _authenticate(chan, "tg_plain_key")).reason == "unknown_key"
    finally:
        await chan.close()
        await server.stop(grace=None)
    assert key_lookups.calls == ["tg_plain_key"]


def test_claims_must_match_the_session_they_name() -> None:
    claims = AccessClaims("usr_a", "org_a", "ses_1", "jti", expires_at_unix=2_000_000_000)
    theirs = SessionSubject("ses_1", "usr_b", "org_a", None, "user", None, "owner")
    other_org = SessionSubject("ses_1", "usr_a", "org_b", None, "user", None, "owner")
    for subject in (None, theirs, other_org):
        assert resolve_token(claims, subject).reason == "invalid_token"
    mine = SessionSubject("ses_1", "usr_a", "org_a", None, "user", 3, "member")
    principal = resolve_token(claims, mine).principal
    assert principal is not None
    assert (principal.key_id, principal.group_id, principal.org_role) == (0, 3, "member")
    assert principal.expires_at_unix == 2_000_000_000 and not principal.is_org_admin
