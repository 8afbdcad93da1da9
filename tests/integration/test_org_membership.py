"""Team organisations on the real stack (through the gateway): members and roles, invitations,
the organisation header, the last-owner rule under concurrency, organisation admins on the admin
routes (scoped to their organisation) and the per-organisation audit log."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tollgate.devstack.testing import SignedIn, sign_up, wait_until


@pytest.fixture(scope="module")
def http(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        yield client


def _h(token: str, org: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if org:
        headers["Swarms-Organization"] = org
    return headers


def _sloughgpt_error(resp: httpx.Response, status: int, reason: str) -> None:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) == {"code", "message", "details", "request_id"}, error
    assert error["details"]["reason"] == reason, error


def _team(http: httpx.Client, owner: SignedIn, name: str = "Acme") -> str:
    resp = http.post("/auth/orgs", json={"name": name}, headers=_h(owner.access_token))
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _add(
    http: httpx.Client, actor: SignedIn, org: str, who: SignedIn, role: str = "member"
) -> httpx.Response:
    return http.post(
        f"/auth/orgs/{org}/members", json={"email": who.email, "role": role}, headers=_h(actor.access_token)
    )


def _roles(http: httpx.Client, viewer: SignedIn, org: str) -> dict[str, str]:
    resp = http.get(f"/auth/orgs/{org}/members", headers=_h(viewer.access_token))
    assert resp.status_code == 200, resp.text
    return {m["user_id"]: m["role"] for m in resp.json()["data"]}


def _key(http: httpx.Client, user: SignedIn, org: str | None = None) -> dict[str, Any]:
    resp = http.post("/auth/api-keys", json={"name": "team-key"}, headers=_h(user.access_token, org))
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def test_members_roles_and_invitations(http: httpx.Client) -> None:
    ada, bob, carol, dave = (sign_up(http) for _ in range(4))
    org = _team(http, ada)
    assert _add(http, ada, org, bob).status_code == 201
    _sloughgpt_error(_add(http, bob, org, dave), 403, "org_admin_required")  # a member manages no one
    invited = http.post(
        f"/auth/orgs/{org}/invitations",
        json={"email": carol.email, "role": "admin"},
        headers=_h(ada.access_token),
    )
    assert invited.status_code == 201, invited.text
    token = invited.json()["token"]
    _sloughgpt_error(
        http.post("/auth/invitations/accept", json={"token": token}, headers=_h(dave.access_token)),
        403,
        "invitation_email_mismatch",
    )
    accepted = http.post("/auth/invitations/accept", json={"token": token}, headers=_h(carol.access_token))
    assert accepted.status_code == 200 and accepted.json()["organization"]["role"] == "admin", accepted.text
    _sloughgpt_error(
        http.post("/auth/invitations/accept", json={"token": token}, headers=_h(carol.access_token)),
        404,
        "invitation_not_found",
    )
    # an admin adds members but makes no owners
    _sloughgpt_error(_add(http, carol, org, dave, "owner"), 403, "owner_required")
    assert _add(http, carol, org, dave, "member").status_code == 201
    assert _roles(http, dave, org) == {
        ada.user_id: "owner",
        bob.user_id: "member",
        carol.user_id: "admin",
        dave.user_id: "member",
    }
    mine = http.get("/auth/orgs", headers=_h(carol.access_token)).json()["data"]
    assert {(o["id"], o["role"]) for o in mine if not o["personal"]} == {(org, "admin")}
    # a member leaves; an admin removes a member; nobody outside sees the list
    assert (
        http.delete(f"/auth/orgs/{org}/members/{bob.user_id}", headers=_h(bob.access_token)).status_code
        == 200
    )
    assert (
        http.delete(f"/auth/orgs/{org}/members/{dave.user_id}", headers=_h(carol.access_token)).status_code
        == 200
    )
    _sloughgpt_error(http.get(f"/auth/orgs/{org}/members", headers=_h(bob.access_token)), 403, "not_a_member")
    assert _roles(http, ada, org) == {ada.user_id: "owner", carol.user_id: "admin"}


def test_personal_organisation_takes_no_members(http: httpx.Client) -> None:
    ada, bob = sign_up(http), sign_up(http)
    _sloughgpt_error(_add(http, ada, ada.org_id, bob), 409, "personal_organization")


def test_last_owner_cannot_be_demoted_or_removed(http: httpx.Client) -> None:
    ada, bob = sign_up(http), sign_up(http)
    org = _team(http, ada)
    assert _add(http, ada, org, bob, "admin").status_code == 201
    _sloughgpt_error(
        http.patch(
            f"/auth/orgs/{org}/members/{ada.user_id}", json={"role": "admin"}, headers=_h(ada.access_token)
        ),
        409,
        "last_owner",
    )
    _sloughgpt_error(
        http.delete(f"/auth/orgs/{org}/members/{ada.user_id}", headers=_h(ada.access_token)),
        409,
        "last_owner",
    )
    _sloughgpt_error(
        http.delete(f"/auth/orgs/{org}/members/{ada.user_id}", headers=_h(bob.access_token)),
        403,
        "owner_required",
    )
    assert _roles(http, ada, org)[ada.user_id] == "owner"


def test_two_owners_demoting_themselves_at_once_leave_one_owner(http: httpx.Client, gateway_url: str) -> None:
    ada, bob = sign_up(http), sign_up(http)
    org = _team(http, ada)
    assert _add(http, ada, org, bob, "owner").status_code == 201
    statuses: list[int] = []
    barrier = threading.Barrier(2)

    def demote(user: SignedIn) -> None:
        with httpx.Client(base_url=gateway_url, timeout=30) as client:
            barrier.wait()
            resp = client.patch(
                f"/auth/orgs/{org}/members/{user.user_id}",
                json={"role": "member"},
                headers=_h(user.access_token),
            )
            statuses.append(resp.status_code)

    threads = [threading.Thread(target=demote, args=(u,)) for u in (ada, bob)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 409], statuses
    assert list(_roles(http, ada, org).values()).count("owner") == 1  # both stay members, one owner


def test_org_header_selects_the_organisation(http: httpx.Client) -> None:
    ada, eve = sign_up(http), sign_up(http)
    org = _team(http, ada)
    me = http.get("/auth/me", headers=_h(ada.access_token, org))
    assert me.status_code == 200 and me.json()["organization"]["id"] == org, me.text
    assert me.json()["organization"]["role"] == "owner"
    assert http.get("/auth/me", headers=_h(ada.access_token)).json()["organization"]["id"] == ada.org_id
    _sloughgpt_error(http.get("/auth/me", headers=_h(eve.access_token, org)), 403, "not_a_member")
    assert _key(http, ada, org)["org_id"] == org
    _sloughgpt_error(
        http.post("/auth/api-keys", json={"name": "x"}, headers=_h(eve.access_token, org)),
        403,
        "not_a_member",
    )
    credit_chat = http.post("/api/keys", json={"name": "dash"}, headers=_h(ada.access_token, org))
    assert credit_chat.status_code == 200, credit_chat.text
    listed = http.get("/auth/api-keys", headers=_h(ada.access_token, org)).json()["data"]
    assert {k["org_id"] for k in listed} == {org} and len(listed) == 2
    refused = http.post("/api/keys", json={"name": "x"}, headers=_h(eve.access_token, org))
    assert refused.status_code == 403 and set(refused.json()) == {"error"}


def test_removed_member_key_stops_working_at_the_gateway(http: httpx.Client) -> None:
    ada, bob = sign_up(http), sign_up(http)
    org = _team(http, ada)
    assert _add(http, ada, org, bob).status_code == 201
    key = _key(http, bob, org)["api_key"]
    assert http.get("/v1/models", headers=_h(key)).status_code == 200  # cached by the gateway now
    removed = http.delete(f"/auth/orgs/{org}/members/{bob.user_id}", headers=_h(ada.access_token))
    assert removed.status_code == 200 and removed.json()["revoked_keys"] == 1, removed.text
    wait_until(
        lambda: http.get("/v1/models", headers=_h(key)).status_code == 401, timeout=10, what="revocation"
    )


@dataclass(frozen=True)
class Team:
    org: str
    owner: SignedIn
    admin_key: dict[str, Any]  # the owner's key in the team organisation
    member_key: dict[str, Any]


@pytest.fixture(scope="module")
def teams(http: httpx.Client) -> tuple[Team, Team]:
    def make() -> Team:
        owner, member = sign_up(http), sign_up(http)
        org = _team(http, owner)
        assert _add(http, owner, org, member).status_code == 201
        return Team(org, owner, _key(http, owner, org), _key(http, member, org))

    return make(), make()


def test_org_admin_acts_only_inside_their_organisation(http: httpx.Client, teams: tuple[Team, Team]) -> None:
    a, b = teams
    as_a = _h(a.admin_key["api_key"])
    listed = http.get("/admin/api-key/list", params={"limit": 100}, headers=as_a)
    assert listed.status_code == 200, listed.text
    assert {k["org_id"] for k in listed.json()["data"]} == {a.org}
    assert {a.admin_key["id"], a.member_key["id"]} <= {k["id"] for k in listed.json()["data"]}
    applied = http.post("/admin/api-key/apply", json={"name": "svc", "group_id": None}, headers=as_a)
    assert applied.status_code == 200 and applied.json()["org_id"] == a.org, applied.text
    escalate = http.post("/admin/api-key/apply", json={"name": "root", "role": "admin"}, headers=as_a)
    assert (escalate.status_code, escalate.json()["error"]["code"]) == (403, "platform_admin_required")
    up = http.post("/admin/api-key/update", json={"id": a.member_key["id"], "month_quota": 3}, headers=as_a)
    assert up.status_code == 200 and up.json()["month_quota"] == 3, up.text
    promote = http.post(
        "/admin/api-key/update", json={"id": a.member_key["id"], "role": "admin"}, headers=as_a
    )
    assert promote.status_code == 403
    for path, body in [
        ("/admin/api-key/update", {"id": b.member_key["id"], "name": "pwned"}),
        ("/admin/api-key/delete", {"id": b.member_key["id"]}),
        ("/admin/api-key/models/authorize", {"key_id": b.member_key["id"], "models": ["sim-chat"]}),
        ("/admin/api-key/secret", {"id": b.member_key["id"]}),
    ]:
        assert http.post(path, json=body, headers=as_a).status_code == 404, path
    assert (
        http.get("/admin/api-key/models", params={"key_id": b.member_key["id"]}, headers=as_a).status_code
        == 404
    )
    assert http.get("/v1/models", headers=_h(b.member_key["api_key"])).status_code == 200  # B's key alive
    # narrowing a key of A is allowed; groups are the platform's
    narrowed = http.post(
        "/admin/api-key/models/authorize",
        json={"key_id": a.member_key["id"], "models": ["sim-chat"]},
        headers=as_a,
    )
    assert narrowed.status_code == 200 and narrowed.json()["restricted"] is True, narrowed.text
    widened = http.post(
        "/admin/api-key/models/authorize",
        json={"key_id": a.member_key["id"], "models": ["sim-chat-slow"]},
        headers=as_a,
    )
    assert (widened.status_code, widened.json()["error"]["code"]) == (403, "grant_would_widen")
    assert http.get("/admin/group/list", headers=as_a).status_code == 200
    assert http.post("/admin/group/save", json={"name": "a-group"}, headers=as_a).status_code == 403
    # a member of the team is no admin
    member = http.get("/admin/api-key/list", headers=_h(a.member_key["api_key"]))
    assert (member.status_code, member.json()["error"]["code"]) == (403, "admin_required")


def test_audit_log_per_organisation(
    http: httpx.Client, admin: httpx.Client, teams: tuple[Team, Team]
) -> None:
    a, b = teams
    resp = http.get("/admin/audit/list", params={"limit": 500}, headers=_h(a.admin_key["api_key"]))
    assert resp.status_code == 200, resp.text
    records = resp.json()["data"]
    assert records and {r["org_id"] for r in records} == {a.org}
    actions = {r["action"] for r in records}
    assert {"org.create", "member.add", "user_api_key.create"} <= actions, actions
    b_records = http.get(
        "/admin/audit/list", params={"limit": 500}, headers=_h(b.admin_key["api_key"])
    ).json()["data"]
    assert {r["org_id"] for r in b_records} == {b.org}
    everything = admin.get("/admin/audit/list", params={"action": "member.add", "limit": 500}).json()["data"]
    assert {a.org, b.org} <= {r["org_id"] for r in everything}
