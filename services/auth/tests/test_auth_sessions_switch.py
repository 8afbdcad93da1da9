"""POST /auth/switch-organization over ASGI on the scratch database: a signed-in user's session
moved to another organisation of theirs (the console's organisation switch), and what it refuses."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from auth_testkit import PASSWORD, assert_seed_error, register
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.auth.sessions.principal import TokenPrincipals
from tollgate.auth.sessions.tokens import TokenIssuer

SWITCH = "/auth/switch-organization"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _team_with_member(http: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Ada owns a team organisation; Bob is a member of it."""
    ada, bob = await register(http), await register(http)
    made = await http.post("/auth/orgs", json={"name": "Acme"}, headers=bearer(ada["access_token"]))
    assert made.status_code == 201, made.text
    org = str(made.json()["id"])
    added = await http.post(
        f"/auth/orgs/{org}/members",
        json={"email": bob["user"]["email"], "role": "member"},
        headers=bearer(ada["access_token"]),
    )
    assert added.status_code == 201, added.text
    return ada, bob, org


async def _switch(http: httpx.AsyncClient, token: str, org: str) -> httpx.Response:
    return await http.post(SWITCH, json={"organization_id": org}, headers=bearer(token))


async def _me(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.get("/auth/me", headers=bearer(token))


async def _sessions_of(sessions: async_sessionmaker[AsyncSession], user_id: str) -> list[Any]:
    async with sessions() as session:
        rows = await session.execute(
            text(
                "SELECT id, org_id, revoked_reason FROM login_sessions"
                " WHERE user_id = :u ORDER BY created_at, id"
            ),
            {"u": user_id},
        )
        return list(rows.all())


async def test_a_member_switches_to_the_team_and_back(
    auth_http: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], tokens: TokenIssuer
) -> None:
    _, bob, org = await _team_with_member(auth_http)
    personal = bob["user"]["org_id"]
    resp = await _switch(auth_http, bob["access_token"], org)
    assert resp.status_code == 200, resp.text
    pair = resp.json()
    assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert pair["refresh_token"].startswith("tgr_") and pair["refresh_token"] != bob["refresh_token"]

    me = (await _me(auth_http, pair["access_token"])).json()
    assert me["organization"] == {"id": org, "name": "Acme", "personal": False, "role": "member"}
    assert me["user"]["id"] == bob["user"]["id"] and me["auth"] == "access_token"

    # The old session ended: its access token and its refresh token are refused.
    old = await _me(auth_http, bob["access_token"])
    assert assert_seed_error(old, 401, "UNAUTHORIZED")["details"]["reason"] == "session_revoked"
    stale = await auth_http.post("/auth/refresh", headers=bearer(bob["refresh_token"]))
    assert assert_seed_error(stale, 401, "UNAUTHORIZED")["details"]["reason"] == "session_revoked"

    # Every route that takes the token acts in the team: the principal, the user's own keys.
    async with sessions() as session:
        result = await TokenPrincipals(tokens).authenticate(session, pair["access_token"])
    assert result.principal is not None
    assert (result.principal.org_id, result.principal.org_role) == (org, "member")
    made = await auth_http.post(
        "/auth/api-keys", json={"name": "team key"}, headers=bearer(pair["access_token"])
    )
    assert made.status_code in (200, 201), made.text
    listed = await auth_http.get("/auth/api-keys", headers=bearer(pair["access_token"]))
    assert listed.status_code == 200, listed.text
    async with sessions() as session:
        key_orgs = (
            await session.execute(
                text("SELECT org_id FROM api_keys WHERE user_id = :u"), {"u": bob["user"]["id"]}
            )
        ).scalars()
        assert list(key_orgs) == [org]

    # A refresh keeps the organisation; switching back lands in the personal one.
    rotated = await auth_http.post("/auth/refresh", headers=bearer(pair["refresh_token"]))
    assert rotated.status_code == 200, rotated.text
    assert (await _me(auth_http, rotated.json()["access_token"])).json()["organization"]["id"] == org
    back = await _switch(auth_http, rotated.json()["access_token"], personal)
    assert back.status_code == 200, back.text
    assert (await _me(auth_http, back.json()["access_token"])).json()["organization"]["id"] == personal

    rows = await _sessions_of(sessions, bob["user"]["id"])
    assert [(r.org_id, r.revoked_reason) for r in rows] == [
        (personal, "switched_organization"),
        (org, "switched_organization"),
        (personal, None),
    ]


async def test_a_non_member_is_refused_alike_whether_the_org_exists_or_not(
    auth_http: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, _, org = await _team_with_member(auth_http)
    carol = await register(auth_http)
    answers = []
    for target in (org, "org_does_not_exist"):
        resp = await _switch(auth_http, carol["access_token"], target)
        error = assert_seed_error(resp, 403, "FORBIDDEN")
        answers.append((error["message"], error["details"]))
    assert answers[0] == answers[1] and answers[0][1]["reason"] == "not_a_member"
    # Nothing changed: the caller's session is still the only one, and live.
    assert (await _me(auth_http, carol["access_token"])).status_code == 200
    rows = await _sessions_of(sessions, carol["user"]["id"])
    assert [(r.org_id, r.revoked_reason) for r in rows] == [(carol["user"]["org_id"], None)]


async def test_a_removed_member_loses_the_switched_session_and_cannot_switch_again(
    auth_http: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], tokens: TokenIssuer
) -> None:
    ada, bob, org = await _team_with_member(auth_http)
    pair = (await _switch(auth_http, bob["access_token"], org)).json()
    removed = await auth_http.delete(
        f"/auth/orgs/{org}/members/{bob['user']['id']}", headers=bearer(ada["access_token"])
    )
    assert removed.status_code == 200, removed.text
    # The session in the team ended with the membership, everywhere.
    async with sessions() as session:
        result = await TokenPrincipals(tokens).authenticate(session, pair["access_token"])
    assert result.principal is None and result.reason == "revoked"
    ended = await _me(auth_http, pair["access_token"])
    assert assert_seed_error(ended, 401, "UNAUTHORIZED")["details"]["reason"] == "session_revoked"
    rows = await _sessions_of(sessions, bob["user"]["id"])
    assert [(r.org_id, r.revoked_reason) for r in rows][-1] == (org, "member_removed")
    # Signed in again (personal), Bob cannot switch back into the team.
    login = await auth_http.post("/auth/login", json={"email": bob["user"]["email"], "password": PASSWORD})
    assert login.status_code == 200, login.text
    again = await _switch(auth_http, login.json()["access_token"], org)
    assert assert_seed_error(again, 403, "FORBIDDEN")["details"]["reason"] == "not_a_member"


async def test_an_api_key_cannot_switch(
    auth_http: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, bob, org = await _team_with_member(auth_http)
    made = await auth_http.post("/auth/api-keys", json={"name": "k"}, headers=bearer(bob["access_token"]))
    assert made.status_code in (200, 201), made.text
    api_key = made.json()["api_key"]
    for target in (org, bob["user"]["org_id"]):
        resp = await _switch(auth_http, api_key, target)
        assert assert_seed_error(resp, 403, "FORBIDDEN")["details"]["reason"] == "organization_mismatch"
    rows = await _sessions_of(sessions, bob["user"]["id"])
    assert len(rows) == 1 and rows[0].revoked_reason is None


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (None, 400, "INVALID_PARAMETER"),
        ({}, 400, "INVALID_PARAMETER"),
        ({"organization_id": ""}, 400, "INVALID_PARAMETER"),
        ({"organization_id": 7}, 400, "INVALID_PARAMETER"),
        ({"organization_id": "x" * 65}, 400, "INVALID_PARAMETER"),
        ({"organization_id": "org_x", "extra": 1}, 400, "INVALID_PARAMETER"),
    ],
)
async def test_a_malformed_body_is_a_400_and_ends_nothing(
    auth_http: httpx.AsyncClient, body: Any, status: int, code: str
) -> None:
    bob = await register(auth_http)
    resp = await auth_http.post(SWITCH, json=body, headers=bearer(bob["access_token"]))
    assert_seed_error(resp, status, code)
    assert (await _me(auth_http, bob["access_token"])).status_code == 200


async def test_no_credential_is_a_401(auth_http: httpx.AsyncClient) -> None:
    resp = await auth_http.post(SWITCH, json={"organization_id": "org_x"})
    assert_seed_error(resp, 401, "UNAUTHORIZED")
