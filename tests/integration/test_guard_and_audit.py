"""The guard API's routes and the audit log, through the gateway on the real stack."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import Account, balance_micros, ledger_usage, wait_until

AUTH_BODY = {
    "model": "sim-chat",
    "messages": [
        {"role": "system", "content": "You are a poetic assistant."},
        {"role": "user", "content": "Compose a poem that explains recursion."},
    ],
}


def _secret(admin: httpx.Client, key_id: int) -> str:
    resp = admin.post("/admin/api-key/secret", json={"id": key_id})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["secret_key"])


def _usage(total_cost: float) -> dict[str, Any]:
    return {
        "model": "sim-chat",
        "temperature": 0.7,
        "top_p": 0.9,
        "input_cost": 0.5,
        "output_cost": 0.3,
        "total_cost": total_cost,
        "input_tokens": 100,
        "output_tokens": 80,
        "max_tokens": 200,
        "messages": AUTH_BODY["messages"],
    }


def test_guard_auth_with_key_and_secret(
    gateway_url: str, admin: httpx.Client, new_account: Callable[..., Account]
) -> None:
    account = new_account()
    secret = _secret(admin, account.key_id)
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        ok = client.post(
            "/api/guard/auth", json=AUTH_BODY, headers={"Authorization": account.key, "SecretKey": secret}
        )
        wrong = client.post(
            "/api/guard/auth",
            json=AUTH_BODY,
            headers={"Authorization": account.key, "SecretKey": "tgs_wrong"},
        )
        missing = client.post("/api/guard/auth", json=AUTH_BODY, headers={"Authorization": account.key})
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["authenticated"] is True and body["allowed"] is True
    assert (body["key_id"], body["org_id"], body["user_id"]) == (
        account.key_id,
        account.org_id,
        account.user_id,
    )
    for refused in (wrong, missing):
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == "invalid_credentials"


def test_log_usage_charges_exactly_total_cost_once_per_idempotency_key_and_refuses_a_changed_retry(
    config: StackConfig, gateway_url: str, admin: httpx.Client, new_account: Callable[..., Account]
) -> None:
    account = new_account(credits=10)
    headers = {"Authorization": account.key, "SecretKey": _secret(admin, account.key_id)}
    start = balance_micros(gateway_url, account.key)
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        first = client.post("/api/guard/log-usage", json=_usage(0.8), headers=headers)
        assert first.status_code == 202, first.text
        assert first.json()["logged"] is True
        wait_until(
            lambda: balance_micros(gateway_url, account.key) == start - 800_000,
            what="the guard usage charged",
        )
        idem = {**headers, "Idempotency-Key": f"retry-{uuid.uuid4().hex}"}
        ids = set()
        for _ in range(5):
            resp = client.post("/api/guard/log-usage", json=_usage(0.25), headers=idem)
            assert resp.status_code == 202, resp.text
            ids.add(resp.json()["event_id"])
        # a different report under a key already used is refused, and nothing of it is published
        changed = client.post("/api/guard/log-usage", json=_usage(0.4), headers=idem)
        assert changed.status_code == 409, changed.text
        assert changed.json()["error"]["code"] == "idempotency_key_reused"
        # a later report of the same org, charged after anything the refused one could have sent
        later = {**headers, "Idempotency-Key": f"later-{uuid.uuid4().hex}"}
        assert client.post("/api/guard/log-usage", json=_usage(0.1), headers=later).status_code == 202
    assert len(ids) == 1
    expected = start - 800_000 - 250_000 - 100_000
    wait_until(lambda: balance_micros(gateway_url, account.key) == expected, what="the retried usage charged")
    wait_until(lambda: ledger_usage(config, account.org_id) == (3, 1_150_000), what="three usage entries")
    assert balance_micros(gateway_url, account.key) == expected


def test_admin_actions_are_audited_without_key_material(
    config: StackConfig, admin: httpx.Client, new_account: Callable[..., Account]
) -> None:
    admin_key = config.admin_api_key
    listed = admin.get("/admin/api-key/list", params={"role": "admin", "q": admin_key[:11]})
    admin_key_id = listed.json()["data"][0]["id"]
    account = new_account()
    secret = _secret(admin, account.key_id)
    deleted = admin.post("/admin/api-key/delete", json={"id": account.key_id})
    assert deleted.status_code == 200, deleted.text

    # the actions and the audit list both go through the gateway (which sets X-Forwarded-For)
    def rows(action: str) -> list[dict[str, Any]]:
        resp = admin.get(
            "/admin/audit/list", params={"action": action, "actor_key_id": admin_key_id, "limit": 500}
        )
        assert resp.status_code == 200, resp.text
        return [r for r in resp.json()["data"] if r["target_id"] == str(account.key_id)]

    for action in ("api_key.apply", "api_key.secret", "api_key.delete"):
        [row] = rows(action)
        assert row["actor_key_id"] == admin_key_id and row["target_type"] == "api_key"
        assert row["ip"] and row["request_id"]
    everything = json.dumps(admin.get("/admin/audit/list", params={"limit": 500}).json())
    assert account.key not in everything and secret not in everything and admin_key not in everything
