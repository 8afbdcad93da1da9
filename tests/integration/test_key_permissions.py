"""Key permissions (SloughGPT: read / write / delete) on the real stack: a read-only key lists
models but cannot call one (403 `permission_denied` in OpenAI's envelope, before any hold or
upstream call, balance untouched); a write key calls models; a key without `read` cannot list."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import (
    SignedIn,
    balance_micros,
    billing_db,
    expected_cost,
    register_model,
    sign_up,
    wait_until,
)


@pytest.fixture(scope="module")
def http(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def model(admin: httpx.Client, sim_url: str) -> tuple[str, str]:
    """A model of this module's own, so the simulator's per-model counter is ours alone."""
    suffix = uuid.uuid4().hex[:8]
    name, upstream = f"perm-{suffix}", f"sim-chat-perm-{suffix}"
    register_model(admin, name, upstream, sim_url)
    return name, upstream


@pytest.fixture(scope="module")
def user(http: httpx.Client) -> SignedIn:
    return sign_up(http)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _key(http: httpx.Client, admin: httpx.Client, user: SignedIn, permissions: list[str]) -> str:
    created = http.post(
        "/auth/api-keys",
        json={"name": "perm-" + "-".join(permissions), "permissions": permissions},
        headers=_bearer(user.access_token),
    )
    assert created.status_code == 201, created.text
    assert created.json()["permissions"] == permissions
    key = str(created.json()["api_key"])
    funded = admin.post("/admin/api-key/recharge", json={"api_key": key, "balance": 5})
    assert funded.status_code == 200, funded.text
    return key


def _upstream_calls(sim_url: str, upstream: str) -> int:
    stats = httpx.get(f"{sim_url}/_sim/stats", timeout=5).json()
    if "by_model" in stats:
        return int(stats["by_model"].get(upstream, 0))
    return int(stats["chat_completions"])  # an older simulator: the global counter


def _chat(http: httpx.Client, key: str, model: str, **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, **extra}
    return http.post("/v1/chat/completions", json=body, headers=_bearer(key))


def _denied(resp: httpx.Response) -> None:
    assert resp.status_code == 403, resp.text
    error = resp.json()["error"]
    assert {"message", "type", "code", "param"} <= set(error), error
    assert (error["type"], error["code"]) == ("permission_error", "permission_denied")


@pytest.mark.parametrize("stream", [False, True])
def test_read_only_key_lists_models_but_cannot_call_one(
    http: httpx.Client,
    admin: httpx.Client,
    gateway_url: str,
    sim_url: str,
    user: SignedIn,
    model: tuple[str, str],
    stream: bool,
) -> None:
    name, upstream = model
    key = _key(http, admin, user, ["read"])
    listed = http.get("/v1/models", headers=_bearer(key))
    assert listed.status_code == 200, listed.text
    assert name in {m["id"] for m in listed.json()["data"]}
    balance, calls = balance_micros(gateway_url, key), _upstream_calls(sim_url, upstream)
    _denied(_chat(http, key, name, stream=stream))
    # and through X-API-Key, the other header SloughGPT accepts
    _denied(
        http.post(
            "/v1/chat/completions",
            json={"model": name, "messages": [{"role": "user", "content": "hi"}]},
            headers={"X-API-Key": key},
        )
    )
    assert balance_micros(gateway_url, key) == balance
    assert _upstream_calls(sim_url, upstream) == calls


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/embeddings", {"input": "hi"}),
        ("/v1/completions", {"prompt": "hi", "max_tokens": 2}),
    ],
)
def test_read_only_key_cannot_use_other_operations(
    http: httpx.Client,
    admin: httpx.Client,
    gateway_url: str,
    user: SignedIn,
    model: tuple[str, str],
    path: str,
    body: dict[str, Any],
) -> None:
    key = _key(http, admin, user, ["read"])
    balance = balance_micros(gateway_url, key)
    _denied(http.post(path, json={"model": model[0], **body}, headers=_bearer(key)))
    assert balance_micros(gateway_url, key) == balance


def _charge(config: StackConfig, request_id: str) -> tuple[str, int] | None:
    with billing_db(config) as conn:
        rows = conn.execute(
            "SELECT org_id, -amount_micros FROM ledger_entries WHERE kind = 'usage' AND ref = %s",
            (request_id,),
        ).fetchall()
    assert len(rows) <= 1, rows
    return (str(rows[0][0]), int(rows[0][1])) if rows else None


def test_write_key_calls_the_model_and_pays(
    config: StackConfig,
    http: httpx.Client,
    admin: httpx.Client,
    gateway_url: str,
    sim_url: str,
    user: SignedIn,
    model: tuple[str, str],
) -> None:
    name, upstream = model
    key = _key(http, admin, user, ["read", "write"])
    calls = _upstream_calls(sim_url, upstream)
    resp = _chat(http, key, name)
    assert resp.status_code == 200, resp.text
    assert _upstream_calls(sim_url, upstream) == calls + 1
    # and it pays: one usage charge for this request, at its exact cost, out of the key's org wallet
    usage = resp.json()["usage"]
    cost = expected_cost(usage["prompt_tokens"], usage["completion_tokens"])
    assert cost > 0
    request_id = resp.headers["x-request-id"]
    charged = wait_until(lambda: _charge(config, request_id), what="the request's charge")
    assert charged == (user.org_id, cost)


def test_key_without_read_cannot_list_models(
    http: httpx.Client, admin: httpx.Client, user: SignedIn, model: tuple[str, str]
) -> None:
    key = _key(http, admin, user, ["write"])
    _denied(http.get("/v1/models", headers=_bearer(key)))
    assert _chat(http, key, model[0]).status_code == 200


def test_read_only_key_cannot_create_or_delete_keys(
    http: httpx.Client, admin: httpx.Client, user: SignedIn
) -> None:
    key = _key(http, admin, user, ["read"])
    created = http.post("/auth/api-keys", json={"name": "minted"}, headers=_bearer(key))
    assert created.status_code == 403, created.text
    assert created.json()["error"]["details"]["reason"] == "permission_denied"
    own = http.get("/auth/api-keys", headers=_bearer(key))
    assert own.status_code == 200, own.text
    victim = next(k for k in own.json()["data"] if not k["revoked"])
    deleted = http.delete(f"/auth/api-keys/{victim['id']}", headers=_bearer(key))
    assert deleted.status_code == 403, deleted.text
    assert "minted" not in {
        k["name"] for k in http.get("/auth/api-keys", headers=_bearer(key)).json()["data"]
    }
