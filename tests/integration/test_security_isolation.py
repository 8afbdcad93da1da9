"""Tenant isolation through the gateway: a user or key of organisation A can neither read nor change
anything of organisation B, and non-admin keys are refused on every admin route."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tollgate.devstack.testing import Account, SignedIn, chat_status, sign_up, wait_until


@dataclass(frozen=True)
class Org:
    user: SignedIn
    key: str  # a user key (all permissions), funded
    key_id: int
    seed002_key_id: str
    requests: int  # chat calls made with `key`


@dataclass(frozen=True)
class World:
    a: Org
    b: Org
    a_seed004: Account  # a seed-004 key of role user (its own personal organisation)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _org(http: httpx.Client, admin: httpx.Client, credits: int, requests: int) -> Org:
    user = sign_up(http)
    created = http.post("/auth/api-keys", json={"name": "iso"}, headers=_bearer(user.access_token))
    assert created.status_code == 201, created.text
    key = created.json()["api_key"]
    seed002 = http.post("/api/keys", json={"name": "iso-002"}, headers=_bearer(user.access_token))
    assert seed002.status_code == 200, seed002.text
    funded = admin.post("/admin/api-key/recharge", json={"api_key": key, "balance": credits})
    assert funded.status_code == 200, funded.text
    for _ in range(requests):
        assert chat_status(http, key) == 200
    return Org(user, key, int(created.json()["id"]), str(seed002.json()["id"]), requests)


@pytest.fixture(scope="module")
def http(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def world(
    http: httpx.Client, admin: httpx.Client, new_account: Callable[..., Account], sim_models: list[str]
) -> World:
    return World(_org(http, admin, 1, 1), _org(http, admin, 2, 2), new_account(credits=0))


def _seed001_error(resp: httpx.Response, status: int) -> None:
    assert resp.status_code == status, resp.text
    assert set(resp.json()["error"]) == {"code", "message", "details", "request_id"}, resp.text


def _b_untouched(http: httpx.Client, w: World) -> None:
    """B's key still works and is still listed as active by B."""
    assert http.get("/v1/models", headers=_bearer(w.b.key)).status_code == 200
    listed = http.get("/auth/api-keys", headers=_bearer(w.b.user.access_token)).json()["data"]
    assert {k["id"]: k["revoked"] for k in listed}[w.b.key_id] is False


# ---- the cases: each reads or changes something of B with A's credentials ---------------------------


def user_key_list_by_token(http: httpx.Client, w: World) -> None:
    resp = http.get("/auth/api-keys", headers=_bearer(w.a.user.access_token))
    assert resp.status_code == 200, resp.text
    assert {str(k["id"]) for k in resp.json()["data"]} == {str(w.a.key_id), w.a.seed002_key_id}
    assert {k["org_id"] for k in resp.json()["data"]} == {w.a.user.org_id}


def user_key_list_by_key(http: httpx.Client, w: World) -> None:
    resp = http.get("/auth/api-keys", headers=_bearer(w.a.key))
    assert resp.status_code == 200, resp.text
    assert {k["org_id"] for k in resp.json()["data"]} == {w.a.user.org_id}


def user_key_list_naming_b(http: httpx.Client, w: World) -> None:
    resp = http.get(
        "/auth/api-keys",
        headers={**_bearer(w.a.user.access_token), "Swarms-Organization": w.b.user.org_id},
    )
    _seed001_error(resp, 403)
    assert str(w.b.key_id) not in resp.text


def user_key_create_in_b(http: httpx.Client, w: World) -> None:
    resp = http.post(
        "/auth/api-keys",
        json={"name": "intruder"},
        headers={**_bearer(w.a.user.access_token), "Swarms-Organization": w.b.user.org_id},
    )
    _seed001_error(resp, 403)
    names = {
        k["name"] for k in http.get("/auth/api-keys", headers=_bearer(w.b.user.access_token)).json()["data"]
    }
    assert "intruder" not in names


def user_key_create_by_key_naming_b(http: httpx.Client, w: World) -> None:
    resp = http.post(
        "/auth/api-keys",
        json={"name": "intruder"},
        headers={**_bearer(w.a.key), "Swarms-Organization": w.b.user.org_id},
    )
    _seed001_error(resp, 403)


def user_key_delete_by_token(http: httpx.Client, w: World) -> None:
    _seed001_error(http.delete(f"/auth/api-keys/{w.b.key_id}", headers=_bearer(w.a.user.access_token)), 404)
    _b_untouched(http, w)


def user_key_delete_by_key(http: httpx.Client, w: World) -> None:
    _seed001_error(http.delete(f"/auth/api-keys/{w.b.key_id}", headers=_bearer(w.a.key)), 404)
    _b_untouched(http, w)


def user_key_delete_naming_b(http: httpx.Client, w: World) -> None:
    resp = http.delete(
        f"/auth/api-keys/{w.b.key_id}",
        headers={**_bearer(w.a.user.access_token), "Swarms-Organization": w.b.user.org_id},
    )
    assert resp.status_code in (403, 404), resp.text
    _b_untouched(http, w)


def seed002_list(http: httpx.Client, w: World) -> None:
    resp = http.get("/api/keys", headers=_bearer(w.a.user.access_token))
    assert resp.status_code == 200, resp.text
    ids = {str(k["id"]) for k in resp.json()["keys"]}
    assert str(w.b.key_id) not in ids and w.b.seed002_key_id not in ids
    assert ids == {str(w.a.key_id), w.a.seed002_key_id}


def seed002_delete(http: httpx.Client, w: World) -> None:
    for key_id in (w.b.seed002_key_id, str(w.b.key_id)):
        resp = http.delete(f"/api/keys/{key_id}", headers=_bearer(w.a.user.access_token))
        assert resp.status_code == 404 and set(resp.json()) == {"error"}, resp.text
    _b_untouched(http, w)
    b_keys = http.get("/api/keys", headers=_bearer(w.b.user.access_token)).json()["keys"]
    assert all(k["revoked"] is False for k in b_keys)


def credits_own_org(http: httpx.Client, w: World) -> None:
    for headers in (_bearer(w.a.key), {**_bearer(w.a.key), "Swarms-Organization": w.b.user.org_id}):
        resp = http.get("/v1/credits", params={"org_id": w.b.user.org_id}, headers=headers)
        assert resp.status_code in (200, 403), resp.text
        if resp.status_code == 200:
            body = resp.json()
            # A was funded 1 credit, B 2: B's balance would be above 1.9 credits.
            assert body["org_id"] == w.a.user.org_id and body["balance_micros"] <= 1_000_000, body


def analytics_own_org(http: httpx.Client, w: World) -> None:
    today = dt.datetime.now(dt.UTC).date().isoformat()

    def total(org: Org, **extra: Any) -> int:
        params = {"start_date": today, "end_date": today, **extra}
        resp = http.get("/analytics/usage", params=params, headers=_bearer(org.key))
        assert resp.status_code == 200, resp.text
        return int(resp.json()["total_requests"])

    wait_until(lambda: total(w.b) >= w.b.requests, timeout=30, what="B's usage in analytics")
    wait_until(lambda: total(w.a) >= w.a.requests, timeout=30, what="A's usage in analytics")
    assert total(w.a) == w.a.requests
    assert total(w.a, org_id=w.b.user.org_id) == w.a.requests


# (method, path, body) of every admin route; bodies aim at B (or escalate A) and must do nothing.
def _admin_routes(w: World) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("POST", "/admin/api-key/apply", {"name": "sneaky", "role": "admin"}),
        ("POST", "/admin/api-key/update", {"id": w.a_seed004.key_id, "role": "admin"}),
        ("POST", "/admin/api-key/delete", {"id": w.b.key_id}),
        ("GET", "/admin/api-key/list", None),
        ("POST", "/admin/api-key/recharge", {"api_key": w.a.key, "balance": 1000}),
        ("GET", "/admin/payment/list", None),
        ("GET", "/admin/group/list", None),
        ("POST", "/admin/group/save", {"name": "sneaky-group"}),
        ("POST", "/admin/group/delete", {"id": 1}),
        ("GET", "/admin/group/models?group_id=1", None),
        ("POST", "/admin/group/models/authorize", {"group_id": 1, "models": ["sim-chat"]}),
        ("POST", "/admin/group/models/deauthorize", {"group_id": 1, "models": ["sim-chat"]}),
        ("GET", f"/admin/api-key/models?key_id={w.b.key_id}", None),
        ("POST", "/admin/api-key/models/authorize", {"key_id": w.b.key_id, "models": ["none"]}),
        ("POST", "/admin/api-key/models/deauthorize", {"key_id": w.b.key_id, "models": ["x"]}),
        ("POST", "/admin/model/save", {"name": "sim-chat", "provider": "openai-compatible", "config": "{}"}),
        ("POST", "/admin/model/delete", {"id": 1}),
        ("GET", "/admin/model/list", None),
    ]


ADMIN_ROUTE_COUNT = 18
CASES: dict[str, Callable[[httpx.Client, World], None]] = {
    f.__name__: f
    for f in (
        user_key_list_by_token,
        user_key_list_by_key,
        user_key_list_naming_b,
        user_key_create_in_b,
        user_key_create_by_key_naming_b,
        user_key_delete_by_token,
        user_key_delete_by_key,
        user_key_delete_naming_b,
        seed002_list,
        seed002_delete,
        credits_own_org,
        analytics_own_org,
    )
}


@pytest.mark.parametrize("case", list(CASES))
def test_org_a_cannot_reach_org_b(http: httpx.Client, world: World, case: str) -> None:
    CASES[case](http, world)


@pytest.mark.parametrize("credential", ["seed004_user_key", "user_created_key"])
@pytest.mark.parametrize("index", range(ADMIN_ROUTE_COUNT))
def test_admin_routes_refuse_non_admin_keys(
    http: httpx.Client, admin: httpx.Client, world: World, index: int, credential: str
) -> None:
    method, path, body = _admin_routes(world)[index]
    key = world.a_seed004.key if credential == "seed004_user_key" else world.a.key
    before = http.get("/v1/credits", headers=_bearer(world.a.key)).json()["balance_micros"]
    resp = http.request(method, path, json=body, headers=_bearer(key))
    assert resp.status_code == 403, f"{method} {path}: {resp.status_code} {resp.text}"
    error = resp.json()["error"]
    assert {"message", "type", "code", "param"} <= set(error), resp.text
    # nothing changed: no recharge, B's key alive, no key minted, no escalation
    assert http.get("/v1/credits", headers=_bearer(world.a.key)).json()["balance_micros"] == before
    _b_untouched(http, world)
    assert http.get("/admin/model/list", headers=_bearer(world.a_seed004.key)).status_code == 403
    listed = admin.get("/admin/api-key/list", params={"q": "sneaky"}).json()
    assert listed["total"] == 0, listed


def test_admin_route_table_is_complete(world: World) -> None:
    assert len(_admin_routes(world)) == ADMIN_ROUTE_COUNT
