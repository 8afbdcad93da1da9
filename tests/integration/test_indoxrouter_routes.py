"""IndoxRouter's provider + model routes on the real stack: its envelope, `usage.cost` equal to what
the balance loses, streaming, batch pricing, model info, health, and its error envelope."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from pricing_helpers import bearer, register, unique, upstream_calls

from tollgate.devstack.testing import Account, balance_micros, wait_until

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello how are you"}]


@pytest.fixture(scope="module")
def provider(admin: httpx.Client, sim_url: str) -> tuple[str, str]:
    """(provider, upstream): catalog models named "<provider>/<model>" on the simulator."""
    prov = unique("s3prov")
    upstream = unique("s3")
    # 2 / 10 micros a token, 5 micros an embedded token, 0.02 credits an image
    register(
        admin,
        sim_url,
        f"{prov}/chat",
        upstream,
        price_in=2,
        price_out=10,
        price_embedding=5,
        price_image=0.02,
    )
    return prov, upstream


def post(gateway_url: str, path: str, key: str | None, body: dict[str, object]) -> httpx.Response:
    headers = bearer(key) if key else {}
    return httpx.post(f"{gateway_url}{path}", json=body, headers=headers, timeout=30)


def _cost_micros(body: dict[str, object]) -> int:
    usage = body["usage"]
    assert isinstance(usage, dict)
    return round(usage["cost"] * 1_000_000)


def test_chat_envelope_and_cost_equal_the_balance_drop(
    provider: tuple[str, str], new_account: Callable[..., Account], gateway_url: str
) -> None:
    account = new_account(credits=1)
    resp = post(
        gateway_url,
        "/chat/completions",
        account.key,
        {"messages": MESSAGES, "provider": provider[0], "model": "chat", "temperature": 0.7, "max_tokens": 5},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert {
        "request_id",
        "created_at",
        "duration_ms",
        "provider",
        "model",
        "success",
        "message",
        "data",
    } <= set(body)
    assert (body["provider"], body["model"], body["success"], body["finish_reason"]) == (
        provider[0],
        "chat",
        True,
        "stop",
    )
    assert body["data"] == "tok0 tok1 tok2 tok3 tok4"
    usage = body["usage"]
    assert (usage["tokens_prompt"], usage["tokens_completion"], usage["tokens_total"]) == (6, 5, 11)
    assert _cost_micros(body) == 6 * 2 + 5 * 10
    wait_until(
        lambda: balance_micros(gateway_url, account.key) == 1_000_000 - 62, what="the chat to be charged"
    )


def test_streamed_chat_ends_with_the_envelope_and_its_cost(
    provider: tuple[str, str], new_account: Callable[..., Account], gateway_url: str
) -> None:
    account = new_account(credits=1)
    body = {"messages": MESSAGES, "provider": provider[0], "model": "chat", "max_tokens": 3, "stream": True}
    with httpx.stream(
        "POST", f"{gateway_url}/chat/completions", json=body, headers=bearer(account.key)
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = [line[6:] for line in resp.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    final = json.loads(events[-2])
    assert final["done"] is True and final["data"] == "tok0 tok1 tok2 "
    assert "".join(json.loads(e)["data"] for e in events[:-2]) == "tok0 tok1 tok2 "
    cost = _cost_micros(final)
    assert cost == 6 * 2 + 3 * 10
    wait_until(
        lambda: balance_micros(gateway_url, account.key) == 1_000_000 - cost, what="the stream to be charged"
    )


def test_completions_embeddings_images_are_charged_what_they_report(
    provider: tuple[str, str], new_account: Callable[..., Account], gateway_url: str
) -> None:
    account = new_account(credits=1)
    common = {"provider": provider[0], "model": "chat"}
    completion = post(
        gateway_url, "/completions", account.key, {**common, "prompt": "Once upon a time", "max_tokens": 2}
    )
    assert completion.status_code == 200, completion.text
    assert (completion.json()["data"], _cost_micros(completion.json())) == ("tok0 tok1", 4 * 2 + 2 * 10)
    embedding = post(gateway_url, "/embeddings", account.key, {**common, "text": "Hello, world!"})
    assert embedding.status_code == 200, embedding.text
    assert (
        embedding.json()["dimensions"] == 8
        and embedding.json()["message"] == "Successfully generated embeddings"
    )
    assert _cost_micros(embedding.json()) == 2 * 5
    image = post(
        gateway_url,
        "/images/generations",
        account.key,
        {
            **common,
            "prompt": "A beautiful sunset",
            "size": "1024x1024",
            "n": 2,
            "additional_params": {"quality": "standard"},
        },
    )
    assert image.status_code == 200, image.text
    assert len(image.json()["data"]) == 2 and set(image.json()["data"][0]) == {"url", "b64_json"}
    assert _cost_micros(image.json()) == 40_000
    total = 28 + 10 + 40_000
    wait_until(
        lambda: balance_micros(gateway_url, account.key) == 1_000_000 - total, what="all three to be charged"
    )


def test_batch_doubles_the_cost(
    provider: tuple[str, str], new_account: Callable[..., Account], gateway_url: str
) -> None:
    account = new_account(credits=1)
    body = {"provider": provider[0], "model": "chat", "prompt": "a b", "max_tokens": 1}
    resp = post(gateway_url, "/completions?batch=1", account.key, body)
    assert resp.status_code == 200, resp.text
    assert _cost_micros(resp.json()) == 2 * (2 * 2 + 1 * 10)
    wait_until(
        lambda: balance_micros(gateway_url, account.key) == 1_000_000 - 28, what="the batch to be charged"
    )


def test_model_info_and_health(
    provider: tuple[str, str], new_account: Callable[..., Account], gateway_url: str
) -> None:
    account = new_account()
    resp = httpx.get(f"{gateway_url}/models/{provider[0]}/chat", headers=bearer(account.key), timeout=10)
    assert resp.status_code == 200, resp.text
    info = resp.json()
    assert (info["id"], info["provider"], info["pricing"]["input"], info["pricing"]["output"]) == (
        "chat",
        provider[0],
        0.002,
        0.01,
    )
    assert info["pricing"]["image"] == 0.02 and "image" in info["capabilities"]
    health = httpx.get(f"{gateway_url}/", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert {"version", "timestamp"} <= set(health.json())


def _error(resp: httpx.Response, status: int, code: str) -> dict[str, object]:
    body = resp.json()
    assert resp.status_code == status, body
    assert set(body) == {"error", "message", "status_code", "details"}
    assert (body["error"], body["status_code"]) == (code, status) and body["message"]
    return dict(body)


def test_error_envelope(
    provider: tuple[str, str], new_account: Callable[..., Account], gateway_url: str, sim_url: str
) -> None:
    chat = {"messages": MESSAGES, "provider": provider[0], "model": "chat"}
    _error(post(gateway_url, "/chat/completions", None, chat), 401, "authentication_error")
    _error(post(gateway_url, "/chat/completions", "tg_not_a_key", chat), 401, "authentication_error")
    poor = new_account()
    called = upstream_calls(sim_url, provider[1])
    refused = _error(post(gateway_url, "/chat/completions", poor.key, chat), 402, "insufficient_credits")
    assert refused["details"]["credits_available"] == 0  # type: ignore[index]
    assert upstream_calls(sim_url, provider[1]) == called
    account = new_account(credits=1)
    _error(post(gateway_url, "/chat/completions", account.key, {**chat, "model": "nope"}), 404, "not_found")
    missing = _error(
        post(gateway_url, "/chat/completions", account.key, {**chat, "messages": []}), 400, "invalid_request"
    )
    assert missing["details"]["param"] == "messages"  # type: ignore[index]
    _error(post(gateway_url, "/embeddings", account.key, {**chat, "text": 5}), 400, "invalid_request")
    _error(
        httpx.get(f"{gateway_url}/models/{provider[0]}/nope", headers=bearer(account.key)), 404, "not_found"
    )
    assert balance_micros(gateway_url, account.key) == 1_000_000


def test_a_used_up_month_quota_is_429_in_indoxrouters_envelope(
    provider: tuple[str, str], new_account: Callable[..., Account], admin: httpx.Client, gateway_url: str
) -> None:
    account = new_account(credits=1)
    update = admin.post("/admin/api-key/update", json={"id": account.key_id, "month_quota": 0.000001})
    assert update.status_code == 200, update.text
    body = {"provider": provider[0], "model": "chat", "prompt": "a b", "max_tokens": 1}

    def refused() -> bool:
        resp = post(gateway_url, "/completions", account.key, body)
        return resp.status_code == 429

    wait_until(refused, what="the quota to apply")  # the principal cache picks the update up
    quota = _error(post(gateway_url, "/completions", account.key, body), 429, "quota_exceeded")
    assert quota["details"]["code"] == "quota_exceeded"  # type: ignore[index]
