"""Key permissions at the gateway (SloughGPT read / write / delete): decided by the HTTP method and
refused with 403 `permission_denied` in OpenAI's envelope before any hold or upstream call."""

from __future__ import annotations

import gateway_fakes
import pytest
from gateway_fakes import Harness

from tollgate.common.auth_client import Principal, permission_for_method

READ_ONLY = Principal(20, "org-1", "user-20", "user", 0, ("read",), "tg_read", 0, 0)
WRITE_ONLY = Principal(21, "org-1", "user-21", "user", 0, ("write",), "tg_write", 0, 0)
NONE = Principal(22, "org-1", "user-22", "user", 0, (), "tg_none", 0, 0)


@pytest.fixture(autouse=True)
def permission_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(gateway_fakes.PRINCIPALS, "read-key", READ_ONLY)
    monkeypatch.setitem(gateway_fakes.PRINCIPALS, "write-key", WRITE_ONLY)
    monkeypatch.setitem(gateway_fakes.PRINCIPALS, "none-key", NONE)


def chat(**extra: object) -> dict[str, object]:
    return {"model": "gpt-sim", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, **extra}


@pytest.mark.parametrize(
    ("method", "permission"),
    [("GET", "read"), ("HEAD", "read"), ("OPTIONS", "read"), ("POST", "write"), ("put", "write"),
     ("PATCH", "write"), ("DELETE", "delete")],
)  # fmt: skip
def test_permission_follows_the_method(method: str, permission: str) -> None:
    assert permission_for_method(method) == permission


def test_an_empty_permission_list_grants_nothing() -> None:
    assert not NONE.may("read") and not NONE.may("write")
    assert READ_ONLY.may("read") and not READ_ONLY.may("write") and not READ_ONLY.may("delete")


@pytest.mark.parametrize("stream", [False, True])
async def test_a_read_only_key_cannot_call_a_model(harness: Harness, stream: bool) -> None:
    resp = await harness.client.post(
        "/v1/chat/completions", json=chat(stream=stream), headers={"authorization": "Bearer read-key"}
    )
    assert resp.status_code == 403, resp.text
    error = resp.json()["error"]
    assert (error["type"], error["code"]) == ("permission_error", "permission_denied")
    assert "write" in error["message"]
    assert harness.billing.reserves == [] and harness.emitter.events == []
    assert harness.sim.state.stats.chat_completions == 0


async def test_x_api_key_header_is_checked_too(harness: Harness) -> None:
    resp = await harness.client.post("/v1/chat/completions", json=chat(), headers={"x-api-key": "read-key"})
    assert (resp.status_code, resp.json()["error"]["code"]) == (403, "permission_denied")
    assert harness.billing.reserves == []


async def test_a_write_key_calls_the_model(harness: Harness) -> None:
    resp = await harness.client.post(
        "/v1/chat/completions", json=chat(), headers={"authorization": "Bearer write-key"}
    )
    assert resp.status_code == 200, resp.text
    assert len(harness.billing.reserves) == 1


async def test_listing_models_needs_read(harness: Harness) -> None:
    ok = await harness.client.get("/v1/models", headers={"authorization": "Bearer read-key"})
    assert ok.status_code == 200, ok.text
    refused = await harness.client.get("/v1/models", headers={"authorization": "Bearer write-key"})
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "permission_denied")
    nothing = await harness.client.get("/v1/models", headers={"authorization": "Bearer none-key"})
    assert nothing.status_code == 403


async def test_unknown_and_missing_keys_still_answer_401(harness: Harness) -> None:
    missing = await harness.client.post("/v1/chat/completions", json=chat())
    unknown = await harness.client.post(
        "/v1/chat/completions", json=chat(), headers={"authorization": "Bearer nobody"}
    )
    assert missing.status_code == 401 and unknown.status_code == 401
    assert harness.billing.reserves == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/embeddings", {"model": "gpt-sim", "input": "hi"}),
        ("/v1/completions", {"model": "gpt-sim", "prompt": "hi", "max_tokens": 2}),
        ("/v1/images/generations", {"model": "priced", "prompt": "a cat"}),
    ],
)
async def test_other_v1_operations_need_write(harness: Harness, path: str, body: dict[str, object]) -> None:
    resp = await harness.client.post(path, json=body, headers={"authorization": "Bearer read-key"})
    assert resp.status_code == 403, resp.text
    assert (resp.json()["error"]["type"], resp.json()["error"]["code"]) == (
        "permission_error",
        "permission_denied",
    )
    assert harness.billing.reserves == [] and harness.emitter.events == []
    allowed = await harness.client.post(path, json=body, headers={"authorization": "Bearer write-key"})
    assert allowed.status_code == 200, allowed.text
