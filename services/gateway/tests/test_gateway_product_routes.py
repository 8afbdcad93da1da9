"""The credit chat API (`POST /api/v1/chat`, `GET /api/models`) and IndoxRouter (provider + model
routes), with SloughGPT's embeddings body on IndoxRouter's path: their request defaults, response
fields and exact error bodies."""

from __future__ import annotations

import orjson
import pytest
from gateway_fakes import Harness, sse_events

USER = {"authorization": "Bearer user-key"}
CREDIT_CHAT = {"model": "groq/gemma-groq-416", "messages": [{"role": "user", "content": "Hello, world!"}]}


async def test_credit_chat_costs_one_credit_and_defaults_max_tokens_to_150(harness: Harness) -> None:
    harness.billing.available_micros = 100_000_000
    r = await harness.client.post("/api/v1/chat", json=CREDIT_CHAT, headers=USER)
    assert r.status_code == 200, r.text
    data = r.json()
    assert (data["credits_charged"], data["credits_remaining"], data["batch_request"]) == (1, 99, False)
    assert data["object"] == "chat.completion" and data["model"] == "groq/gemma-groq-416"
    assert data["usage"] == {"prompt_tokens": 2, "completion_tokens": 16, "total_tokens": 18}
    [sent] = harness.billing.requests
    assert sent.max_cost_micros == 1_000_000 and sent.model == "groq/gemma-groq-416"
    [event] = harness.emitter.decoded()
    assert (event.cost_micros, event.batch, event.endpoint, event.operation) == (
        1_000_000,
        False,
        "/api/v1/chat",
        "chat",
    )


async def test_credit_chat_batch_costs_two_credits(harness: Harness) -> None:
    harness.billing.available_micros = 5_000_000
    r = await harness.client.post("/api/v1/chat?batch=1", json=CREDIT_CHAT, headers=USER)
    assert r.status_code == 200
    assert (r.json()["credits_charged"], r.json()["credits_remaining"], r.json()["batch_request"]) == (
        2,
        3,
        True,
    )
    [event] = harness.emitter.decoded()
    assert (event.cost_micros, event.batch) == (2_000_000, True)


async def test_credit_chat_uses_the_models_per_request_price(harness: Harness) -> None:
    r = await harness.client.post("/api/v1/chat", json={**CREDIT_CHAT, "model": "priced"}, headers=USER)
    assert r.json()["credits_charged"] == 0.25


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong"}])
async def test_credit_chat_invalid_key_body(harness: Harness, headers: dict[str, str]) -> None:
    r = await harness.client.post("/api/v1/chat", json=CREDIT_CHAT, headers=headers)
    assert (r.status_code, r.json()) == (401, {"error": "Invalid API key"})


async def test_credit_chat_insufficient_credits_body(harness: Harness) -> None:
    harness.billing.reasons.pop("org-poor", None)
    r = await harness.client.post(
        "/api/v1/chat", json=CREDIT_CHAT, headers={"authorization": "Bearer poor-key"}
    )
    assert r.status_code == 402
    # the fake billing reports 10 micros available
    assert r.json() == {
        "error": "Insufficient credits. Required: 1, Available: 1e-05",
        "credits_required": 1,
        "credits_available": 1e-05,
    }
    assert harness.sim.state.stats.chat_completions == 0


async def test_credit_chat_quota_and_budget_refusals(harness: Harness) -> None:
    r = await harness.client.post(
        "/api/v1/chat", json=CREDIT_CHAT, headers={"authorization": "Bearer quota-key"}
    )
    assert r.status_code == 429 and r.json()["code"] == "quota_exceeded" and r.json()["error"]
    r = await harness.client.post(
        "/api/v1/chat", json=CREDIT_CHAT, headers={"authorization": "Bearer budget-key"}
    )
    assert r.status_code == 402 and r.json()["code"] == "budget_exceeded"


async def test_credit_chat_model_not_found_body(harness: Harness) -> None:
    r = await harness.client.post(
        "/api/v1/chat", json={**CREDIT_CHAT, "model": "invalid-model"}, headers=USER
    )
    assert (r.status_code, r.json()) == (404, {"error": "Model 'invalid-model' not found"})


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b'{"model": "groq/gemma-groq-416"}',
        b'{"messages": []}',
        b'{"model": "", "messages": [1]}',
        b"nope",
    ],
)
async def test_credit_chat_missing_fields_body(harness: Harness, body: bytes) -> None:
    r = await harness.client.post("/api/v1/chat", content=body, headers=USER)
    assert (r.status_code, r.json()) == (400, {"error": "Missing required fields: model and messages array"})
    assert harness.billing.reserves == []


async def test_credit_chat_models_list_is_public_and_shows_prices(harness: Harness) -> None:
    r = await harness.client.get("/api/models")
    assert r.status_code == 200
    by_id = {m["id"]: m for m in r.json()["data"]}
    assert by_id["groq/gemma-groq-416"]["credits_per_request"] == 1
    assert by_id["groq/gemma-groq-416"]["credits_per_batch_request"] == 2
    assert by_id["priced"]["credits_per_request"] == 0.25
    assert not [m for m in by_id if m.startswith("ft:")]  # fine-tuned models are never public


async def test_credit_chat_models_list_shows_a_key_only_its_own_orgs_fine_tuned_models(
    harness: Harness,
) -> None:
    r = await harness.client.get("/api/models", headers=USER)
    assert r.status_code == 200
    tuned = [m["id"] for m in r.json()["data"] if m["id"].startswith("ft:")]
    assert tuned == ["ft:gpt-sim:org-1:mine:ftjob-1"]


# -- IndoxRouter -----------------------------------------------------------------------------------


def indoxrouter(**fields: object) -> dict[str, object]:
    return {"provider": "groq", "model": "gemma-groq-416", **fields}


async def test_indoxrouter_chat_envelope_reports_cost_in_credits(harness: Harness) -> None:
    body = indoxrouter(messages=[{"role": "user", "content": "hi there"}], max_tokens=4, temperature=0.7)
    r = await harness.client.post("/chat/completions", json=body, headers=USER)
    assert r.status_code == 200, r.text
    data = r.json()
    assert (data["provider"], data["model"], data["success"], data["message"]) == (
        "groq",
        "gemma-groq-416",
        True,
        "",
    )
    assert data["data"] == "tok0 tok1 tok2 tok3" and data["finish_reason"] == "stop"
    usage = data["usage"]
    assert (usage["tokens_prompt"], usage["tokens_completion"], usage["tokens_total"]) == (2, 4, 6)
    [event] = harness.emitter.decoded()
    assert usage["cost"] * 1_000_000 == event.cost_micros == 2 * 2 + 4 * 6
    assert data["request_id"] == event.event_id
    assert {"created_at", "duration_ms"} <= set(data) and {"latency", "timestamp"} <= set(usage)


async def test_indoxrouter_streams_text_then_the_envelope_with_cost(harness: Harness) -> None:
    body = indoxrouter(messages=[{"role": "user", "content": "hi"}], max_tokens=3, stream=True)
    r = await harness.client.post("/chat/completions", json=body, headers=USER)
    events = sse_events(r.content)
    assert events[-1] == "[DONE]"
    parts = [orjson.loads(e) for e in events[:-1]]
    assert "".join(p["data"] for p in parts[:-1]) == "tok0 tok1 tok2 "
    final = parts[-1]
    assert final["done"] is True and final["data"] == "tok0 tok1 tok2 " and final["finish_reason"] == "stop"
    [event] = harness.emitter.decoded()
    assert final["usage"]["cost"] * 1_000_000 == event.cost_micros == 1 * 2 + 3 * 6
    assert (event.stream, event.status) == (True, "ok")


async def test_indoxrouter_completions_embeddings_images(harness: Harness) -> None:
    r = await harness.client.post(
        "/completions", json=indoxrouter(prompt="Once upon a time", max_tokens=2), headers=USER
    )
    assert (r.status_code, r.json()["data"]) == (200, "tok0 tok1")
    priced = {"provider": "openai-compatible", "model": "priced"}  # a catalog name with its provider
    r = await harness.client.post("/embeddings", json={**priced, "text": "Hello, world!"}, headers=USER)
    assert r.status_code == 200, r.text
    assert r.json()["dimensions"] == 8 and len(r.json()["data"]) == 1
    assert r.json()["message"] == "Successfully generated embeddings"
    r = await harness.client.post(
        "/images/generations", json={**priced, "prompt": "a fox", "n": 2}, headers=USER
    )
    assert r.status_code == 200, r.text
    assert len(r.json()["data"]) == 2 and r.json()["usage"]["cost"] == 0.25 + 2 * 0.04
    costs = [e.cost_micros for e in harness.emitter.decoded()]
    assert costs == [4 * 2 + 2 * 6, 250_000 + 1, 250_000 + 80_000]


async def test_indoxrouter_error_envelope(harness: Harness) -> None:
    r = await harness.client.post(
        "/chat/completions", json=indoxrouter(messages=[{"role": "user", "content": "x"}])
    )
    assert r.status_code == 401
    assert r.json()["error"] == "authentication_error" and r.json()["status_code"] == 401
    assert set(r.json()) == {"error", "message", "status_code", "details"}
    r = await harness.client.post(
        "/chat/completions", json=indoxrouter(model="nope", messages=[]), headers=USER
    )
    assert (r.status_code, r.json()["error"], r.json()["details"]["param"]) == (
        400,
        "invalid_request",
        "messages",
    )
    r = await harness.client.post(
        "/chat/completions",
        json=indoxrouter(model="nope", messages=[{"role": "user", "content": "x"}]),
        headers=USER,
    )
    assert (r.status_code, r.json()["error"]) == (404, "not_found")
    r = await harness.client.post(
        "/completions", json=indoxrouter(prompt="x"), headers={"authorization": "Bearer poor-key"}
    )
    assert (r.status_code, r.json()["error"]) == (402, "insufficient_credits")
    assert r.json()["details"]["credits_required"] > 0
    assert harness.sim.state.stats.by_model == {}


async def test_indoxrouter_model_info_and_health(harness: Harness) -> None:
    r = await harness.client.get("/models/openai-compatible/priced", headers=USER)
    assert r.status_code == 200
    info = r.json()
    assert (info["id"], info["provider"], info["pricing"]["input"], info["pricing"]["request"]) == (
        "priced",
        "openai-compatible",
        0.002,  # 2 credits per 1M tokens = 0.002 per 1K
        0.25,
    )
    assert "image" in info["capabilities"]
    r = await harness.client.get("/models/openai/priced", headers=USER)
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = await harness.client.get("/")
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["version"] == "test"


async def test_sloughgpt_embeddings_body_on_the_shared_path(harness: Harness) -> None:
    body = {"model_id": "priced", "texts": ["Hello world", "Machine learning"], "dimension": 8}
    r = await harness.client.post("/embeddings", json=body, headers=USER)
    assert r.status_code == 200, r.text
    assert (
        len(r.json()["embeddings"]) == 2 and r.json()["dimension"] == 8 and r.json()["model_id"] == "priced"
    )
    r = await harness.client.post("/embeddings", json={"model_id": "nope", "texts": ["x"]}, headers=USER)
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
