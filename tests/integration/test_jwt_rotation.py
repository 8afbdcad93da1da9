"""Rotating auth's JWT signing secret on the running stack (docs/operations.md, "Rotate secrets"): auth
restarted with a new AUTH_JWT_SECRET and the old one in AUTH_JWT_PREVIOUS_SECRETS keeps a session
from before working (its access token until expiry, its refresh token) and signs new tokens with the
new key; once the old secret is dropped, tokens it signed are refused and nobody is logged out."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest

from tollgate.auth.config import DEV_JWT_SECRET
from tollgate.common.keyring import key_id
from tollgate.devstack.config import StackConfig
from tollgate.devstack.stack import Stack

NEW_SECRET = "rotated-jwt-secret-" + uuid.uuid4().hex + uuid.uuid4().hex


@pytest.fixture(scope="module")
def http(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        yield client


@pytest.fixture
def restart_auth(stack: Stack) -> Iterator[Any]:
    """Restarts auth with extra settings; auth runs with the stack's own settings again afterwards."""

    def restart(**env: str) -> None:
        stack.stop_service("auth")
        stack.start_service("auth", extra_env=env)

    yield restart
    stack.stop_service("auth")
    stack.start_service("auth")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _me(http: httpx.Client, access_token: str) -> int:
    return http.get("/auth/me", headers=_bearer(access_token)).status_code


def _refresh(http: httpx.Client, refresh_token: str) -> dict[str, Any]:
    resp = http.post("/auth/refresh", headers=_bearer(refresh_token))
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def test_a_session_survives_the_rotation_and_the_dropped_key_is_refused(
    http: httpx.Client, config: StackConfig, restart_auth: Any
) -> None:
    old_secret = config.service_env("auth").get("AUTH_JWT_SECRET") or DEV_JWT_SECRET
    email = f"rotate-{uuid.uuid4().hex[:12]}@example.com"
    resp = http.post("/auth/register", json={"email": email, "password": "rotation-pass-1", "name": "R"})
    assert resp.status_code == 201, resp.text
    before = resp.json()
    assert _kid(before["access_token"]) == key_id(old_secret)

    # step 1: the new secret signs, the old one still verifies
    restart_auth(AUTH_JWT_SECRET=NEW_SECRET, AUTH_JWT_PREVIOUS_SECRETS=old_secret)
    assert _me(http, before["access_token"]) == 200  # issued before the restart, still in use
    during = _refresh(http, before["refresh_token"])  # refreshed: not logged out
    assert _kid(during["access_token"]) == key_id(NEW_SECRET)
    jwt.decode(during["access_token"], NEW_SECRET, algorithms=["HS256"], issuer="tollgate-auth")
    assert _me(http, during["access_token"]) == 200

    # step 2: the old secret dropped (after the access-token lifetime, in a real rotation)
    restart_auth(AUTH_JWT_SECRET=NEW_SECRET)
    refused = http.get("/auth/me", headers=_bearer(before["access_token"]))
    assert refused.status_code == 401, refused.text
    assert _me(http, during["access_token"]) == 200
    after = _refresh(http, during["refresh_token"])  # the session goes on
    assert _kid(after["access_token"]) == key_id(NEW_SECRET)
    assert _me(http, after["access_token"]) == 200
