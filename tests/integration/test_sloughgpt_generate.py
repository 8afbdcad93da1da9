"""SloughGPT's text generation on the real stack (issue 12, items 4 and 5): `POST /generate`, its
stream and `/generate/batch`, also under `/v1/`, answered in the documented shapes, each answer
charged exactly what its body says, the seed's error envelope for bad parameters, versions and
rate limits, and the seed's own curl example (no `model_id`: GATEWAY_SLOUGHGPT_DEFAULT_MODEL)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from tollgate.devstack.testing import PRICE_IN, PRICE_OUT, Account, balance_micros, wait_until


@pytest.fixture
def account(new_account: Callable[..., Account]) -> Account:
    return new_account(credits=1)


def post(gateway_url: str, path: str, key: str, body: object, **headers: str) -> httpx.Response:
    headers = {"X-API-Key": key, **headers}  # SloughGPT's own key header
    return httpx.post(f"{gateway_url}{path}", json=body, headers=headers, timeout=30)


def cost(usage: dict[str, int]) -> int:
    return usage["prompt_tokens"] * PRICE_IN + usage["completion_tokens"] * PRICE_OUT


def test_the_seeds_generate_examples_answer_and_cost_what_they_say(
    gateway_url: str, account: Account
) -> None:
    body = {
        "model_id": "sim-chat",
        "prompt": "Explain artificial intelligence",
        "max_tokens": 150,
        "temperature": 0.7,
        "top_p": 0.9,
        "stop_sequences": ["\n", "###"],
        "stream": False,
    }
    answer = post(gateway_url, "/generate", account.key, body)
    assert answer.status_code == 200, answer.text
    assert answer.headers["api-version"] == "2024-01"
    data = answer.json()
    assert data["object"] == "generation" and data["model_id"] == "sim-chat" and data["text"]
    assert data["finish_reason"] in ("stop", "length") and data["created_at"].endswith("Z")
    spent = cost(data["usage"])
    assert round(data["cost"] * 1_000_000) == spent
    # the seed's curl example: no model_id, the default model answers
    curl = post(gateway_url, "/v1/generate", account.key, {"prompt": "Hello", "max_tokens": 10})
    assert curl.status_code == 200, curl.text
    assert curl.json()["model_id"] == "sim-chat"
    spent += cost(curl.json()["usage"])
    wait_until(
        lambda: balance_micros(gateway_url, account.key) == 1_000_000 - spent or None,
        what="both generations charged exactly their cost",
    )


def test_a_streamed_generation_is_text_chunks_then_the_bill(gateway_url: str, account: Account) -> None:
    body = {"model_id": "sim-chat", "prompt": "Write a story about AI", "max_tokens": 12, "stream": True}
    with httpx.stream(
        "POST",
        f"{gateway_url}/generate",
        json=body,
        headers={"Authorization": f"Bearer {account.key}"},
        timeout=30,
    ) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        data = [line[5:].strip() for line in resp.iter_lines() if line.startswith("data:")]
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert "".join(c["text"] for c in chunks)
    last = chunks[-1]
    assert last["finish_reason"] in ("stop", "length") and last["usage"]["completion_tokens"] > 0
    wait_until(
        lambda: balance_micros(gateway_url, account.key) == 1_000_000 - cost(last["usage"]) or None,
        what="the stream charged what its last chunk says",
    )


def test_a_batch_is_answered_per_prompt_and_charged_per_prompt(gateway_url: str, account: Account) -> None:
    body = {
        "model_id": "sim-chat",
        "prompts": ["What is machine learning?", "Explain neural networks", "How does AI work?"],
        "max_tokens": 10,
        "temperature": 0.7,
    }
    answer = post(gateway_url, "/generate/batch", account.key, body)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["object"] == "generation.batch" and [r["index"] for r in data["results"]] == [0, 1, 2]
    spent = sum(cost(r["usage"]) for r in data["results"])
    assert round(data["cost"] * 1_000_000) == spent
    wait_until(
        lambda: balance_micros(gateway_url, account.key) == 1_000_000 - spent or None,
        what="three charges, one a prompt",
    )


def test_errors_are_the_seeds_envelope_and_cost_nothing(
    gateway_url: str, admin: httpx.Client, account: Account
) -> None:
    hot = post(
        gateway_url, "/generate", account.key, {"model_id": "sim-chat", "prompt": "p", "temperature": 3.0}
    )
    assert hot.status_code == 400
    assert hot.json()["error"] == {
        "code": "INVALID_PARAMETER",
        "message": "Parameter 'temperature' must be between 0 and 2",
        "details": {
            "reason": "invalid_parameter",
            "parameter": "temperature",
            "value": 3.0,
            "allowed": "0 to 2",
            "allowed_range": [0.0, 2.0],
        },
        "request_id": hot.headers["x-request-id"],
    }
    version = post(gateway_url, "/generate", account.key, {"prompt": "p"}, **{"API-Version": "1999-01"})
    assert version.status_code == 400 and version.json()["error"]["details"]["parameter"] == "API-Version"
    assert (
        post(gateway_url, "/generate", "tg_not_a_key", {"prompt": "p"}).json()["error"]["code"]
        == "UNAUTHORIZED"
    )
    assert balance_micros(gateway_url, account.key) == 1_000_000  # nothing held or charged for them
    # a key limited to one request a minute: the second is RATE_LIMITED with the seed's headers
    assert admin.post("/admin/api-key/limits", json={"id": account.key_id, "rpm": 1}).status_code == 200
    wait_until(
        lambda: (
            post(gateway_url, "/generate", account.key, {"prompt": "p", "max_tokens": 2}).status_code == 429
            or None
        ),
        what="the key's new limit to reach the gateway",
    )
    limited = post(gateway_url, "/generate", account.key, {"prompt": "p", "max_tokens": 2})
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "RATE_LIMITED"
    for header in (
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-retry-after",
    ):
        assert header in limited.headers
    assert limited.headers["api-version"] == "2024-01"
