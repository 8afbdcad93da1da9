"""Model authorisation through the gateway (the Bedrock-style gateway): groups, grants to a group and
to a key, the 403 for a model not granted, the filtered /v1/models, and cache invalidation on change."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import openai
import pytest
from openai import OpenAI

from tollgate.devstack.testing import Account, wait_until

CHAT = [{"role": "user", "content": "ping"}]


def _group(admin: httpx.Client) -> int:
    resp = admin.post("/admin/group/save", json={"name": f"grants-{uuid.uuid4().hex[:8]}"})
    assert resp.status_code == 200, resp.text
    return int(resp.json()["id"])


def _grant(admin: httpx.Client, action: str, **body: object) -> None:
    subject = "group" if "group_id" in body else "api-key"
    resp = admin.post(f"/admin/{subject}/models/{action}", json=body)
    assert resp.status_code == 200, resp.text


def _listed(client: OpenAI) -> set[str]:
    return {m.id for m in client.models.list()}


def _allowed(client: OpenAI, model: str) -> bool:
    try:
        client.chat.completions.create(model=model, messages=CHAT, max_tokens=2)  # type: ignore[arg-type]
    except openai.PermissionDeniedError as exc:
        body = exc.body if isinstance(exc.body, dict) else {}
        assert body.get("code") == "model_not_allowed", exc.body
        return False
    return True


def test_group_grants_limit_its_keys_and_take_effect_at_once(
    admin: httpx.Client,
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    sim_models: list[str],
) -> None:
    group_id = _group(admin)
    account = new_account(credits=1, group_id=group_id)
    client = client_for(account.key)
    # no grants yet: every model, and the gateway now caches that principal
    assert set(sim_models) <= _listed(client)
    assert _allowed(client, "sim-chat-nousage")

    _grant(admin, "authorize", group_id=group_id, models=["sim-chat"])
    # well within the cached principal's 30 s: only the invalidation event explains it (speed: make bench)
    wait_until(lambda: _listed(client) == {"sim-chat"}, timeout=10, what="/v1/models to follow the grant")
    assert _allowed(client, "sim-chat")
    assert not _allowed(client, "sim-chat-nousage")

    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(model="sim-chat-slow", messages=CHAT)  # type: ignore[arg-type]
    assert refused.value.status_code == 403
    assert refused.value.body["type"] == "permission_error"  # type: ignore[index]

    # another key outside the group is untouched
    outsider = client_for(new_account(credits=1, group_id=_group(admin)).key)
    assert set(sim_models) <= _listed(outsider)


def test_key_grants_and_deauthorisation(
    admin: httpx.Client,
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    sim_models: list[str],
) -> None:
    group_id = _group(admin)
    account = new_account(credits=1, group_id=group_id)
    neighbour = client_for(new_account(credits=1, group_id=group_id).key)
    client = client_for(account.key)
    _grant(admin, "authorize", group_id=group_id, models=["sim-chat"])
    _grant(admin, "authorize", key_id=account.key_id, models=["sim-chat-nousage"])

    listed = admin.get(f"/admin/api-key/models?key_id={account.key_id}").json()
    assert [g["model"] for g in listed["data"]] == ["sim-chat-nousage"]
    assert [g["model"] for g in listed["group_models"]] == ["sim-chat"]
    assert _listed(client) == {"sim-chat", "sim-chat-nousage"}
    assert _allowed(client, "sim-chat-nousage")
    assert _listed(neighbour) == {"sim-chat"}  # a key's own grant is its own

    # deauthorise the key's grant: refused within a second (the cached principal is dropped)
    _grant(admin, "deauthorize", key_id=account.key_id, models=["sim-chat-nousage"])
    wait_until(lambda: not _allowed(client, "sim-chat-nousage"), timeout=1.0, what="the deauthorisation")
    assert _listed(client) == {"sim-chat"}

    # and the group's last grant: nothing granted any more, so every model again
    _grant(admin, "deauthorize", group_id=group_id, models=["sim-chat"])
    wait_until(lambda: set(sim_models) <= _listed(client), timeout=1.0, what="grants to be lifted")
    assert _allowed(client, "sim-chat-nousage")


def test_a_group_in_use_is_not_deleted(admin: httpx.Client, new_account: Callable[..., Account]) -> None:
    name = f"doomed-{uuid.uuid4().hex[:8]}"
    group_id = admin.post("/admin/group/save", json={"name": name}).json()["id"]
    account = new_account(group_id=group_id)
    refused = admin.post("/admin/group/delete", json={"id": group_id})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "group_in_use"
    assert admin.post("/admin/api-key/delete", json={"id": account.key_id}).status_code == 200
    assert admin.post("/admin/group/delete", json={"id": group_id}).status_code == 200
    assert admin.get("/admin/group/list", params={"q": name}).json()["total"] == 0
