"""A signed-in user's own API keys through the gateway (SloughGPT and the credit chat API): created
keys work on /v1/models, lists never show secrets, revocation reaches the gateway within a second,
users never see each other's keys, permissions hold, expiry holds, malformed bodies write nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import wait_until

PASSWORD = "integration-pass-1"
ROUTE = "/auth/api-keys"


@pytest.fixture(scope="module")
def http(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        yield client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _signed_in(http: httpx.Client) -> tuple[str, dict[str, Any]]:
    """Register, then log in as SloughGPT does; the access token of the login."""
    email = f"keys-{uuid.uuid4().hex[:12]}@example.com"
    registered = http.post("/auth/register", json={"email": email, "password": PASSWORD, "name": "Kay"})
    assert registered.status_code == 201, registered.text
    login = http.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return login.json()["access_token"], registered.json()["user"]


def _create(http: httpx.Client, credential: str, **body: Any) -> dict[str, Any]:
    resp = http.post(ROUTE, json={"name": "it", **body}, headers=_bearer(credential))
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def _models_status(http: httpx.Client, key: str) -> int:
    return http.get("/v1/models", headers=_bearer(key)).status_code


def _seed_error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) == {"code", "message", "details", "request_id"}, error
    assert error["code"] == code and error["request_id"] == resp.headers["x-request-id"]
    return dict(error)


def _auth_db(config: StackConfig) -> psycopg.Connection[Any]:
    dsn = config.database_url("auth").replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(dsn, autocommit=True)


def _keys_of(config: StackConfig, user_id: str) -> int:
    with _auth_db(config) as conn:
        row = conn.execute("SELECT count(*) FROM api_keys WHERE user_id = %s", (user_id,)).fetchone()
    return int(row[0]) if row else 0


def test_create_use_list_and_revoke_a_key(http: httpx.Client, config: StackConfig) -> None:
    token, user = _signed_in(http)
    created = _create(http, token, name="Production API Key", permissions=["read", "write", "delete"])
    key = created["api_key"]
    assert created["org_id"] == user["org_id"] and key.startswith(created["key_prefix"])
    assert _models_status(http, key) == 200  # also warms the gateway's principal cache

    listed = http.get(ROUTE, headers=_bearer(token))
    assert listed.status_code == 200, listed.text
    assert [(k["id"], k["key_prefix"], k["revoked"]) for k in listed.json()["data"]] == [
        (created["id"], created["key_prefix"], False)
    ]
    assert key not in listed.text
    with _auth_db(config) as conn:
        row = conn.execute("SELECT key_hash FROM api_keys WHERE id = %s", (created["id"],)).fetchone()
    assert row is not None and key not in row[0]

    deleted = http.delete(f"{ROUTE}/{created['id']}", headers=_bearer(token))
    assert deleted.status_code == 200, deleted.text
    # well within the cached principal's 30 s: auth.keys.v1 dropped it (how fast: make bench)
    wait_until(lambda: _models_status(http, key) == 401, timeout=10, what="the revoked key to be refused")
    assert http.get(ROUTE, headers=_bearer(token)).json()["data"][0]["revoked"] is True


def test_users_never_reach_each_others_keys(http: httpx.Client) -> None:
    alice, _ = _signed_in(http)
    bob, _ = _signed_in(http)
    bobs = _create(http, bob)
    assert http.get(ROUTE, headers=_bearer(alice)).json() == {"data": [], "total": 0}
    _seed_error(http.delete(f"{ROUTE}/{bobs['id']}", headers=_bearer(alice)), 404, "NOT_FOUND")
    assert _models_status(http, bobs["api_key"]) == 200
    assert [k["id"] for k in http.get(ROUTE, headers=_bearer(bob)).json()["data"]] == [bobs["id"]]


def test_a_read_only_key_cannot_create_keys(http: httpx.Client, config: StackConfig) -> None:
    token, user = _signed_in(http)
    reader = _create(http, token, permissions=["read"])
    refused = http.post(ROUTE, json={"name": "escalate"}, headers=_bearer(reader["api_key"]))
    assert _seed_error(refused, 403, "FORBIDDEN")["details"]["reason"] == "permission_denied"
    writer = _create(http, token, permissions=["read", "write"])
    minted = _create(http, writer["api_key"], permissions=["read"])
    assert _models_status(http, minted["api_key"]) == 200
    assert _keys_of(config, user["id"]) == 3


def test_a_key_past_its_expiry_is_refused(http: httpx.Client, config: StackConfig) -> None:
    token, _ = _signed_in(http)
    created = _create(http, token, expires_days=30)
    assert created["expires_at"] is not None
    with _auth_db(config) as conn:
        conn.execute(
            "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = %s", (created["id"],)
        )
    # Not used before, so no gateway cache entry outlives the change.
    assert _models_status(http, created["api_key"]) == 401
    me = http.get("/auth/me", headers=_bearer(created["api_key"]))
    assert _seed_error(me, 401, "UNAUTHORIZED")["details"]["reason"] == "expired"


def test_credit_chat_generate_key_with_cookie_and_bearer(http: httpx.Client) -> None:
    token, _ = _signed_in(http)
    generated = http.post(
        "/api/keys",
        content=b'{"name": "My API Key"}',
        headers={"Cookie": f"session={token}", "Content-Type": "application/json"},
    )
    assert generated.status_code == 200, generated.text
    body = generated.json()
    assert set(body) == {"id", "key", "name", "prefix", "created_at"} and body["name"] == "My API Key"
    assert _models_status(http, body["key"]) == 200

    listed = http.get("/api/keys", headers=_bearer(token))
    assert listed.status_code == 200, listed.text
    assert [(k["id"], k["prefix"]) for k in listed.json()["keys"]] == [(body["id"], body["prefix"])]
    assert body["key"] not in listed.text

    for resp in (http.post("/api/keys", json={"name": "x"}), http.get("/api/keys", headers=_bearer("a.b.c"))):
        assert resp.status_code == 401 and set(resp.json()) == {"error"}, resp.text


@pytest.mark.parametrize(
    ("route", "raw"),
    [
        (ROUTE, b"{not json"),
        (ROUTE, b'{"name": ""}'),
        (ROUTE, b'{"name": "k", "permissions": ["read", "admin"]}'),
        (ROUTE, b'{"name": "k", "expires_days": 0}'),
        (ROUTE, b'{"name": "k", "expires_days": 3651}'),
        ("/api/keys", b"[1]"),
        ("/api/keys", b'{"name": 5}'),
        ("/api/keys", b'{"title": "k"}'),
    ],
)
def test_malformed_bodies_are_400_and_write_nothing(
    http: httpx.Client, config: StackConfig, route: str, raw: bytes
) -> None:
    token, user = _signed_in(http)
    resp = http.post(route, content=raw, headers={**_bearer(token), "Content-Type": "application/json"})
    if route == ROUTE:
        _seed_error(resp, 400, "INVALID_PARAMETER")
    else:
        assert resp.status_code == 400 and set(resp.json()) == {"error"}, resp.text
        assert isinstance(resp.json()["error"], str)
    assert _keys_of(config, user["id"]) == 0
