"""Tenant isolation through the gateway: a user or key of organisation A can neither read nor change
anything of organisation B, and non-admin keys are refused on every admin route."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from admin_routes_support import (
    ADMIN_ROUTE_COUNT,
    ORG_SCOPED_LOOKUPS,
    ORG_SCOPED_READS,
    ORG_SCOPED_WRITES,
    PATH_TEMPLATES,
    admin_routes,
)

from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import (
    Account,
    SignedIn,
    chat_status,
    ledger_usage,
    settled_events,
    sign_up,
    wait_until,
)


@dataclass(frozen=True)
class Org:
    user: SignedIn
    key: str  # a user key (all permissions), funded
    key_id: int
    credit_chat_key_id: str
    requests: int  # chat calls made with `key`


@dataclass(frozen=True)
class TeamOrg:
    """A team organisation owned by an Org's user, with the owner's key in it (an org admin key)."""

    id: str
    admin_key: str
    admin_key_id: int
    invitation_id: int  # a pending invitation of this organisation


@dataclass(frozen=True)
class World:
    a: Org
    b: Org
    a_bedrock_gateway: Account  # a Bedrock-style gateway key of role user (its own personal organisation)
    ta: TeamOrg  # owned by a.user
    tb: TeamOrg  # owned by b.user
    config: StackConfig


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _org(http: httpx.Client, admin: httpx.Client, credits: int, requests: int) -> Org:
    user = sign_up(http)
    created = http.post("/auth/api-keys", json={"name": "iso"}, headers=_bearer(user.access_token))
    assert created.status_code == 201, created.text
    key = created.json()["api_key"]
    credit_chat = http.post("/api/keys", json={"name": "iso-002"}, headers=_bearer(user.access_token))
    assert credit_chat.status_code == 200, credit_chat.text
    funded = admin.post("/admin/api-key/recharge", json={"api_key": key, "balance": credits})
    assert funded.status_code == 200, funded.text
    for _ in range(requests):
        assert chat_status(http, key) == 200
    return Org(user, key, int(created.json()["id"]), str(credit_chat.json()["id"]), requests)


@pytest.fixture(scope="module")
def http(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        yield client


def _team(http: httpx.Client, org: Org) -> TeamOrg:
    token = org.user.access_token
    created = http.post("/auth/orgs", json={"name": "iso-team"}, headers=_bearer(token))
    assert created.status_code == 201, created.text
    team_id = created.json()["id"]
    in_team = {**_bearer(token), "Swarms-Organization": team_id}
    key = http.post("/auth/api-keys", json={"name": "iso-team-admin"}, headers=in_team)
    assert key.status_code == 201, key.text
    invited = http.post(
        f"/auth/orgs/{team_id}/invitations", json={"email": "nobody@example.com"}, headers=_bearer(token)
    )
    assert invited.status_code == 201, invited.text
    return TeamOrg(team_id, key.json()["api_key"], int(key.json()["id"]), int(invited.json()["id"]))


@pytest.fixture(scope="module")
def world(
    http: httpx.Client,
    admin: httpx.Client,
    new_account: Callable[..., Account],
    sim_models: list[str],
    config: StackConfig,
) -> World:
    a, b = _org(http, admin, 1, 1), _org(http, admin, 2, 2)
    return World(a, b, new_account(credits=0), _team(http, a), _team(http, b), config)


def _sloughgpt_error(resp: httpx.Response, status: int) -> None:
    assert resp.status_code == status, resp.text
    assert set(resp.json()["error"]) == {"code", "message", "details", "request_id"}, resp.text


def _b_untouched(http: httpx.Client, w: World) -> None:
    """B's keys still work and are still listed as active by B; B's team is as it was."""
    assert http.get("/v1/models", headers=_bearer(w.b.key)).status_code == 200
    assert http.get("/v1/models", headers=_bearer(w.tb.admin_key)).status_code == 200
    listed = http.get("/auth/api-keys", headers=_bearer(w.b.user.access_token)).json()["data"]
    assert {k["id"]: k["revoked"] for k in listed}[w.b.key_id] is False
    owner = _bearer(w.b.user.access_token)
    members = http.get(f"/auth/orgs/{w.tb.id}/members", headers=owner).json()["data"]
    assert [(m["user_id"], m["role"]) for m in members] == [(w.b.user.user_id, "owner")]
    pending = http.get(f"/auth/orgs/{w.tb.id}/invitations", headers=owner).json()["data"]
    assert [i["id"] for i in pending] == [w.tb.invitation_id]
    b_keys = http.get("/auth/api-keys", headers={**owner, "Swarms-Organization": w.tb.id}).json()["data"]
    assert {k["name"]: k["revoked"] for k in b_keys} == {"iso-team-admin": False}


# ---- the cases: each reads or changes something of B with A's credentials ---------------------------


def user_key_list_by_token(http: httpx.Client, w: World) -> None:
    resp = http.get("/auth/api-keys", headers=_bearer(w.a.user.access_token))
    assert resp.status_code == 200, resp.text
    assert {str(k["id"]) for k in resp.json()["data"]} == {str(w.a.key_id), w.a.credit_chat_key_id}
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
    _sloughgpt_error(resp, 403)
    assert str(w.b.key_id) not in resp.text


def user_key_create_in_b(http: httpx.Client, w: World) -> None:
    resp = http.post(
        "/auth/api-keys",
        json={"name": "intruder"},
        headers={**_bearer(w.a.user.access_token), "Swarms-Organization": w.b.user.org_id},
    )
    _sloughgpt_error(resp, 403)
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
    _sloughgpt_error(resp, 403)


def user_key_delete_by_token(http: httpx.Client, w: World) -> None:
    _sloughgpt_error(http.delete(f"/auth/api-keys/{w.b.key_id}", headers=_bearer(w.a.user.access_token)), 404)
    _b_untouched(http, w)


def user_key_delete_by_key(http: httpx.Client, w: World) -> None:
    _sloughgpt_error(http.delete(f"/auth/api-keys/{w.b.key_id}", headers=_bearer(w.a.key)), 404)
    _b_untouched(http, w)


def user_key_delete_naming_b(http: httpx.Client, w: World) -> None:
    resp = http.delete(
        f"/auth/api-keys/{w.b.key_id}",
        headers={**_bearer(w.a.user.access_token), "Swarms-Organization": w.b.user.org_id},
    )
    _sloughgpt_error(resp, 403)  # A is no member of B's organisation
    assert resp.json()["error"]["details"] == {"reason": "not_a_member"}
    _b_untouched(http, w)


def credit_chat_list(http: httpx.Client, w: World) -> None:
    resp = http.get("/api/keys", headers=_bearer(w.a.user.access_token))
    assert resp.status_code == 200, resp.text
    ids = {str(k["id"]) for k in resp.json()["keys"]}
    assert str(w.b.key_id) not in ids and w.b.credit_chat_key_id not in ids
    assert ids == {str(w.a.key_id), w.a.credit_chat_key_id}


def credit_chat_delete(http: httpx.Client, w: World) -> None:
    for key_id in (w.b.credit_chat_key_id, str(w.b.key_id)):
        resp = http.delete(f"/api/keys/{key_id}", headers=_bearer(w.a.user.access_token))
        assert resp.status_code == 404 and set(resp.json()) == {"error"}, resp.text
    _b_untouched(http, w)
    b_keys = http.get("/api/keys", headers=_bearer(w.b.user.access_token)).json()["keys"]
    assert all(k["revoked"] is False for k in b_keys)


def credits_own_org(http: httpx.Client, w: World) -> None:
    """A key belongs to one organisation: naming B (query or header) still answers A's own wallet,
    to the micro-credit: A's 1 credit less what A's requests were charged."""
    org = w.a.user.org_id
    wait_until(lambda: settled_events(w.config, org) == w.a.requests, what="A's requests to settle")
    exact = 1_000_000 - ledger_usage(w.config, org)[1]
    for headers in (_bearer(w.a.key), {**_bearer(w.a.key), "Swarms-Organization": w.b.user.org_id}):
        resp = http.get("/v1/credits", params={"org_id": w.b.user.org_id}, headers=headers)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert (body["org_id"], body["balance_micros"], body["held_micros"]) == (org, exact, 0), body


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


def _a_credentials(w: World) -> list[dict[str, str]]:
    """A's signed-in user, A's personal key and A's team admin key."""
    return [_bearer(w.a.user.access_token), _bearer(w.a.key), _bearer(w.ta.admin_key)]


def org_members_of_b(http: httpx.Client, w: World) -> None:
    for headers in _a_credentials(w):
        resp = http.get(f"/auth/orgs/{w.tb.id}/members", headers=headers)
        _sloughgpt_error(resp, 403)
        assert w.b.user.user_id not in resp.text


def org_changes_in_b(http: httpx.Client, w: World) -> None:
    b_owner = w.b.user.user_id
    for headers in _a_credentials(w):
        calls = [
            http.post(
                f"/auth/orgs/{w.tb.id}/members",
                json={"email": w.a.user.email, "role": "owner"},
                headers=headers,
            ),
            http.post(f"/auth/orgs/{w.tb.id}/invitations", json={"email": w.a.user.email}, headers=headers),
            http.get(f"/auth/orgs/{w.tb.id}/invitations", headers=headers),
            http.patch(f"/auth/orgs/{w.tb.id}/members/{b_owner}", json={"role": "member"}, headers=headers),
            http.delete(f"/auth/orgs/{w.tb.id}/members/{b_owner}", headers=headers),
            http.delete(f"/auth/orgs/{w.tb.id}/invitations/{w.tb.invitation_id}", headers=headers),
        ]
        for resp in calls:
            _sloughgpt_error(resp, 403)
    _b_untouched(http, w)


def org_list_shows_only_own(http: httpx.Client, w: World) -> None:
    ids = {o["id"] for o in http.get("/auth/orgs", headers=_bearer(w.a.user.access_token)).json()["data"]}
    assert ids == {w.a.user.org_id, w.ta.id}


def me_naming_b(http: httpx.Client, w: World) -> None:
    for org in (w.b.user.org_id, w.tb.id):
        _sloughgpt_error(
            http.get("/auth/me", headers={**_bearer(w.a.user.access_token), "Swarms-Organization": org}), 403
        )


def team_key_create_in_b(http: httpx.Client, w: World) -> None:
    headers = {**_bearer(w.a.user.access_token), "Swarms-Organization": w.tb.id}
    _sloughgpt_error(http.post("/auth/api-keys", json={"name": "intruder"}, headers=headers), 403)
    _b_untouched(http, w)


def org_admin_lists_only_own(http: httpx.Client, w: World) -> None:
    headers = _bearer(w.ta.admin_key)
    keys = http.get("/admin/api-key/list", params={"limit": 100}, headers=headers)
    assert keys.status_code == 200, keys.text
    assert {k["org_id"] for k in keys.json()["data"]} == {w.ta.id}
    audit = http.get("/admin/audit/list", params={"limit": 500}, headers=headers)
    assert audit.status_code == 200, audit.text
    assert {r["org_id"] for r in audit.json()["data"]} == {w.ta.id}


def org_admin_changes_b_keys(http: httpx.Client, w: World) -> None:
    headers = _bearer(w.ta.admin_key)
    for key_id in (w.tb.admin_key_id, w.b.key_id):
        for path, body in [
            ("/admin/api-key/update", {"id": key_id, "name": "pwned"}),
            ("/admin/api-key/delete", {"id": key_id}),
            ("/admin/api-key/secret", {"id": key_id}),
            ("/admin/api-key/models/authorize", {"key_id": key_id, "models": ["none"]}),
            ("/admin/api-key/models/deauthorize", {"key_id": key_id, "models": ["x"]}),
        ]:
            resp = http.post(path, json=body, headers=headers)
            assert resp.status_code == 404, f"{path}: {resp.text}"
        assert (
            http.get("/admin/api-key/models", params={"key_id": key_id}, headers=headers).status_code == 404
        )
    _b_untouched(http, w)


def org_admin_platform_routes(http: httpx.Client, w: World) -> None:
    headers = _bearer(w.ta.admin_key)
    for path, body in [
        ("/admin/api-key/apply", {"name": "sneaky", "role": "admin"}),
        ("/admin/group/save", {"name": "sneaky-group"}),
        ("/admin/group/delete", {"id": 1}),
        ("/admin/group/models/authorize", {"group_id": 1, "models": ["sim-chat"]}),
        ("/admin/group/models/deauthorize", {"group_id": 1, "models": ["sim-chat"]}),
    ]:
        resp = http.post(path, json=body, headers=headers)
        assert resp.status_code == 403, f"{path}: {resp.text}"


# (method, path, body) of every admin route; bodies aim at B (or escalate A) and must do nothing.
# Where each service serves its own routes (its OpenAPI document lists them)
SERVICES = ("gateway", "auth", "billing", "analytics", "training")
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
        credit_chat_list,
        credit_chat_delete,
        credits_own_org,
        analytics_own_org,
        org_members_of_b,
        org_changes_in_b,
        org_list_shows_only_own,
        me_naming_b,
        team_key_create_in_b,
        org_admin_lists_only_own,
        org_admin_changes_b_keys,
        org_admin_platform_routes,
    )
}


def _names_org_b(body: object, world: World) -> bool:
    """Whether any record in a JSON answer belongs to organisation B: its org id anywhere, or B's
    key id as a record's `key_id` (compared as a value: A's key 178 must not match B's 17)."""
    if isinstance(body, dict):
        if any(k.endswith("key_id") and v == world.b.key_id for k, v in body.items()):
            return True
        return any(_names_org_b(value, world) for value in body.values())
    if isinstance(body, list):
        return any(_names_org_b(value, world) for value in body)
    return body == world.b.user.org_id


@pytest.mark.parametrize("case", list(CASES))
def test_org_a_cannot_reach_org_b(http: httpx.Client, world: World, case: str) -> None:
    CASES[case](http, world)


@pytest.mark.parametrize("credential", ["bedrock_gateway_user_key", "user_created_key"])
@pytest.mark.parametrize("index", range(ADMIN_ROUTE_COUNT))
def test_admin_routes_refuse_non_admin_keys(
    http: httpx.Client, admin: httpx.Client, world: World, index: int, credential: str
) -> None:
    method, path, body = admin_routes(world)[index]
    key = world.a_bedrock_gateway.key if credential == "bedrock_gateway_user_key" else world.a.key
    before = http.get("/v1/credits", headers=_bearer(world.a.key)).json()["balance_micros"]
    resp = http.request(method, path, json=body, headers=_bearer(key))
    if path in ORG_SCOPED_READS and resp.status_code == 200:
        # The owner of a personal organisation may read its own records there; nothing of B.
        assert not _names_org_b(resp.json(), world), resp.text
    elif method == "GET" and path.split("?")[0] in ORG_SCOPED_LOOKUPS and resp.status_code == 404:
        assert resp.json()["error"]["code"], resp.text  # B's record does not exist for A's admin
    elif method != "GET" and path in ORG_SCOPED_WRITES and resp.status_code in (400, 404):
        assert resp.json()["error"]["code"], resp.text  # B's organisation or record is out of reach
    else:
        assert resp.status_code == 403, f"{method} {path}: {resp.status_code} {resp.text}"
        error = resp.json()["error"]
        assert {"message", "type", "code", "param"} <= set(error), resp.text
    # nothing changed: no recharge, B's key alive, no key minted, no escalation
    assert http.get("/v1/credits", headers=_bearer(world.a.key)).json()["balance_micros"] == before
    _b_untouched(http, world)
    assert http.get("/admin/model/list", headers=_bearer(world.a_bedrock_gateway.key)).status_code == 403
    listed = admin.get("/admin/api-key/list", params={"q": "sneaky"}).json()
    assert listed["total"] == 0, listed
    tiers = {t["name"]: t for t in admin.get("/admin/rate-tier/list").json()["data"]}
    assert "sneaky-tier" not in tiers and tiers["free"]["rpm"] == 100, tiers
    b_limits = admin.get("/admin/api-key/limits", params={"id": world.b.key_id}).json()
    assert b_limits["rpm"] is None, b_limits
    b_recording = admin.get("/admin/org/chat-recording", params={"org_id": world.b.user.org_id}).json()
    assert b_recording["mode"] == "off", b_recording


def test_admin_route_table_is_complete(world: World, config: StackConfig) -> None:
    """Every /admin route any service serves is in the table the refusal test walks."""
    served = set()
    for svc in SERVICES:
        spec = httpx.get(f"{config.url(svc)}/openapi.json", timeout=10).json()
        served |= {
            (method.upper(), path)
            for path, ops in spec["paths"].items()
            if path.startswith("/admin")
            for method in ops
        }
    tested = {
        (method, PATH_TEMPLATES.get(path.split("?")[0], path.split("?")[0]))
        for method, path, _ in admin_routes(world)
    }
    assert served, "no service listed an /admin route"
    assert served - tested == set(), "admin routes the refusal test does not try"
    assert tested - served == set(), "routes in the table that no service serves"
    assert len(admin_routes(world)) == ADMIN_ROUTE_COUNT
