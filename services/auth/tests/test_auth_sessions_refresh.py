"""Refresh rotation and replay, logout, /auth/token and login throttling, over ASGI."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from auth_testkit import PASSWORD, assert_seed_error, register
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request

from tollgate.auth.keys.schemas import ApplyKeyRequest
from tollgate.auth.keys.service import KeyService, utcnow
from tollgate.auth.sessions.tokens import TokenIssuer
from tollgate.auth.web import client_ip


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/auth/refresh", headers=bearer(token))


async def test_refresh_rotates_and_a_replayed_token_kills_the_family(
    auth_http: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    first = await register(auth_http)
    rotated = await _refresh(auth_http, first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    by_body = await auth_http.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert by_body.status_code == 200, by_body.text
    third = by_body.json()
    assert (await auth_http.get("/auth/me", headers=bearer(third["access_token"]))).status_code == 200

    replay = await _refresh(auth_http, first["refresh_token"])
    error = assert_seed_error(replay, 401, "UNAUTHORIZED")
    assert error["details"]["reason"] == "refresh_token_reused"
    # The whole family is gone: the newest refresh token and the access tokens minted from it.
    assert_seed_error(await _refresh(auth_http, third["refresh_token"]), 401, "UNAUTHORIZED")
    assert_seed_error(
        await auth_http.get("/auth/me", headers=bearer(third["access_token"])), 401, "UNAUTHORIZED"
    )
    async with sessions() as session:
        rows = (
            (
                await session.execute(
                    text("SELECT revoked_reason FROM login_sessions WHERE user_id = :u"),
                    {"u": first["user"]["id"]},
                )
            )
            .scalars()
            .all()
        )
    assert rows == ["refresh_token_reused"]  # committed, although the request answered 401

    # Signing in again starts a new, healthy family.
    login = await auth_http.post("/auth/login", json={"email": first["user"]["email"], "password": PASSWORD})
    assert (await _refresh(auth_http, login.json()["refresh_token"])).status_code == 200


async def test_two_concurrent_rotations_of_one_token_let_only_one_through(
    auth_http: httpx.AsyncClient,
) -> None:
    pair = await register(auth_http)
    results = await asyncio.gather(*(_refresh(auth_http, pair["refresh_token"]) for _ in range(2)))
    assert sorted(r.status_code for r in results) == [200, 401]
    winner = next(r for r in results if r.status_code == 200).json()
    # The loser was a replay: the family is revoked, so even the winner's tokens stop working.
    assert (await _refresh(auth_http, winner["refresh_token"])).status_code == 401


async def test_unknown_missing_and_expired_refresh_tokens_are_refused(
    auth_http: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    assert_seed_error(await _refresh(auth_http, "tgr_unknown"), 401, "UNAUTHORIZED")
    assert_seed_error(await auth_http.post("/auth/refresh"), 401, "UNAUTHORIZED")
    pair = await register(auth_http)
    # An access token is not a refresh token.
    assert_seed_error(await _refresh(auth_http, pair["access_token"]), 401, "UNAUTHORIZED")
    async with sessions.begin() as session:
        await session.execute(
            text(
                "UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE session_id IN"
                " (SELECT id FROM login_sessions WHERE user_id = :u)"
            ),
            {"u": pair["user"]["id"]},
        )
    error = assert_seed_error(await _refresh(auth_http, pair["refresh_token"]), 401, "UNAUTHORIZED")
    assert error["details"]["reason"] == "token_expired"


async def test_an_expired_access_token_is_refused(auth_http: httpx.AsyncClient, tokens: TokenIssuer) -> None:
    pair = await register(auth_http)
    claims = tokens.decode_access(pair["access_token"])
    old = tokens.access_token(
        user_id=claims.user_id,
        org_id=claims.org_id,
        session_id=claims.session_id,
        now=utcnow() - timedelta(minutes=16),
    )
    error = assert_seed_error(await auth_http.get("/auth/me", headers=bearer(old)), 401, "UNAUTHORIZED")
    assert error["details"]["reason"] == "token_expired"


async def test_logout_ends_the_session_for_both_tokens(auth_http: httpx.AsyncClient) -> None:
    pair = await register(auth_http)
    other = await auth_http.post("/auth/login", json={"email": pair["user"]["email"], "password": PASSWORD})
    out = await auth_http.post("/auth/logout", headers=bearer(pair["access_token"]))
    assert out.status_code == 200 and out.json() == {"logged_out": True}
    assert_seed_error(
        await auth_http.get("/auth/me", headers=bearer(pair["access_token"])), 401, "UNAUTHORIZED"
    )
    assert_seed_error(await _refresh(auth_http, pair["refresh_token"]), 401, "UNAUTHORIZED")
    # Another sign-in of the same user is another session, untouched.
    assert (await auth_http.get("/auth/me", headers=bearer(other.json()["access_token"]))).status_code == 200


async def test_logout_needs_a_session(
    auth_http: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], key_service: KeyService
) -> None:
    assert_seed_error(await auth_http.post("/auth/logout"), 401, "UNAUTHORIZED")
    async with sessions.begin() as session:
        issued = await key_service.apply(session, ApplyKeyRequest(name="keyed"))
    assert_seed_error(
        await auth_http.post("/auth/logout", headers=bearer(issued.api_key)), 401, "UNAUTHORIZED"
    )


async def test_token_endpoint_takes_a_form_or_json(auth_http: httpx.AsyncClient) -> None:
    pair = await register(auth_http)
    email = pair["user"]["email"]
    form = await auth_http.post(
        "/auth/token", data={"username": email, "password": PASSWORD, "grant_type": "password", "scope": ""}
    )
    as_json = await auth_http.post("/auth/token", json={"username": email, "password": PASSWORD})
    for resp in (form, as_json):
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert set(body) == {"access_token", "token_type", "expires_in"} and body["token_type"] == "bearer"
        me = await auth_http.get("/auth/me", headers=bearer(body["access_token"]))
        assert me.json()["user"]["id"] == pair["user"]["id"]
    wrong = await auth_http.post("/auth/token", data={"username": email, "password": "wrong-password"})
    assert_seed_error(wrong, 401, "UNAUTHORIZED")


async def test_five_failures_lock_the_account_for_a_while_not_the_address(
    auth_http: httpx.AsyncClient,
) -> None:
    victim = await register(auth_http)
    email = victim["user"]["email"]
    for _ in range(5):
        bad = await auth_http.post("/auth/login", json={"email": email, "password": "guess-guess"})
        assert_seed_error(bad, 401, "UNAUTHORIZED")
    for password in ("guess-guess", PASSWORD):  # even the right password waits for the window
        locked = await auth_http.post("/auth/login", json={"email": email, "password": password})
        assert_seed_error(locked, 429, "RATE_LIMITED")
        assert 0 < int(locked.headers["retry-after"]) <= 300
    assert_seed_error(
        await auth_http.post("/auth/token", json={"username": email, "password": PASSWORD}),
        429,
        "RATE_LIMITED",
    )
    # Another account from the same address still signs in.
    neighbour = await register(auth_http)
    ok = await auth_http.post("/auth/login", json={"email": neighbour["user"]["email"], "password": PASSWORD})
    assert ok.status_code == 200


async def test_a_success_resets_the_account_counter(auth_http: httpx.AsyncClient) -> None:
    email = (await register(auth_http))["user"]["email"]
    for _ in range(2):
        for _ in range(4):
            await auth_http.post("/auth/login", json={"email": email, "password": "guess-guess"})
        ok = await auth_http.post("/auth/login", json={"email": email, "password": PASSWORD})
        assert ok.status_code == 200, ok.text


def _request(peer: str, forwarded: str | None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return Request({"type": "http", "client": (peer, 5000), "headers": headers})


def test_client_ip_trusts_forwarded_for_only_from_trusted_proxies() -> None:
    trusted = frozenset({"127.0.0.1"})
    assert client_ip(_request("203.0.113.9", "198.51.100.1"), trusted) == "203.0.113.9"
    assert client_ip(_request("127.0.0.1", None), trusted) == "127.0.0.1"
    # The right end is the address the proxy saw; what the client wrote further left is ignored.
    assert client_ip(_request("127.0.0.1", "1.2.3.4, 198.51.100.7"), trusted) == "198.51.100.7"
    assert client_ip(_request("127.0.0.1", "198.51.100.7, 127.0.0.1"), trusted) == "198.51.100.7"
