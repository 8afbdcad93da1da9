"""Models whose upstream speaks Anthropic's Messages API, called through the gateway's OpenAI-shaped
routes against the in-process simulator's /v1/messages (catalog entries: gateway_fakes.anthropic_entries;
prices per token in micro-credits: input 2, cached input 1, cache write 3, output 6)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from gateway_fakes import Harness, sse_events

USER = {"authorization": "Bearer user-key"}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
EIGHT_WORDS = "one two three four five six seven eight"


def chat(model: str = "claude-sim", content: Any = "hello there world", **fields: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 4, **fields}


def chunks_of(body: bytes) -> tuple[list[dict[str, Any]], str]:
    events = sse_events(body)
    return [orjson.loads(e) for e in events[:-1]], events[-1]


async def test_non_streamed_answer_is_an_openai_chat_completion(harness: Harness) -> None:
    r = await harness.client.post("/v1/chat/completions", json=chat(), headers=USER)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["object"] == "chat.completion" and data["model"] == "claude-sim"
    [choice] = data["choices"]
    assert choice["message"] == {"role": "assistant", "content": "tok0 tok1 tok2 tok3"}
    assert choice["finish_reason"] == "length"  # the simulator stopped at max_tokens
    assert (data["usage"]["prompt_tokens"], data["usage"]["completion_tokens"]) == (3, 4)
    stats = harness.sim.state.stats
    assert (stats.messages, stats.chat_completions) == (1, 0)
    [event] = harness.emitter.decoded()
    assert (event.provider, event.status, event.tokens_estimated) == ("anthropic", "ok", False)
    assert event.cost_micros == 3 * 2 + 4 * 6
    assert harness.billing.reserves[0][3] >= event.cost_micros


@pytest.mark.parametrize("wants_usage", [True, False])
async def test_streamed_answer_is_openai_chunks(harness: Harness, wants_usage: bool) -> None:
    body = chat(stream=True, stream_options={"include_usage": wants_usage})
    r = await harness.client.post("/v1/chat/completions", json=body, headers=USER)
    assert r.status_code == 200
    chunks, done = chunks_of(r.content)
    assert done == "[DONE]"
    content = [c for c in chunks if c["choices"]]
    assert content[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in content) == "tok0 tok1 tok2 tok3 "
    assert content[-1]["choices"][0]["finish_reason"] == "length"
    assert {c["model"] for c in chunks} == {"claude-sim"}
    usage_chunks = [c for c in chunks if c.get("usage")]
    if wants_usage:
        [last] = usage_chunks
        assert last is chunks[-1] and (
            last["usage"]["prompt_tokens"],
            last["usage"]["completion_tokens"],
        ) == (3, 4)
    else:
        assert usage_chunks == []
    [event] = harness.emitter.decoded()
    assert (event.stream, event.status, event.tokens_estimated) == (True, "ok", False)
    assert event.cost_micros == 3 * 2 + 4 * 6  # the upstream's usage, hidden or not
    assert harness.sim.state.stats.streams_completed == 1


@pytest.mark.parametrize("stream", [False, True])
async def test_cached_tokens_are_priced_at_the_cached_price(harness: Harness, stream: bool) -> None:
    # the simulator reads a quarter of the 8-token prompt from the cache and writes half of it
    body = chat("claude-cached", EIGHT_WORDS, stream=stream, stream_options={"include_usage": True})
    if not stream:
        body.pop("stream_options")
    r = await harness.client.post("/v1/chat/completions", json=body, headers=USER)
    assert r.status_code == 200
    usage = r.json()["usage"] if not stream else chunks_of(r.content)[0][-1]["usage"]
    assert usage["prompt_tokens"] == 8
    assert usage["prompt_tokens_details"] == {"cached_tokens": 2, "cache_write_tokens": 4}
    [event] = harness.emitter.decoded()
    assert (event.tokens_in, event.tokens_cached_in, event.tokens_cache_write) == (8, 2, 4)
    # 2 fresh at 2, 2 cached at 1, 4 written at 3, 4 output at 6
    assert event.cost_micros == 2 * 2 + 2 * 1 + 4 * 3 + 4 * 6


async def test_tools_round_trip(harness: Harness) -> None:
    ask = {"role": "user", "content": "What is the weather in Paris? Use get_weather."}
    body = {"model": "claude-sim", "messages": [ask], "tools": [WEATHER_TOOL], "max_tokens": 4}
    r = await harness.client.post("/v1/chat/completions", json=body, headers=USER)
    assert r.status_code == 200, r.text
    [choice] = r.json()["choices"]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == {"city": "sim"}
    # the caller runs the tool and sends its result back: the model answers in text
    body["messages"] = [
        ask,
        choice["message"],
        {"role": "tool", "tool_call_id": call["id"], "content": "Sunny, 24 C"},
    ]
    r = await harness.client.post("/v1/chat/completions", json=body, headers=USER)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"].startswith("tok0")
    # streamed: the call comes in OpenAI's tool_calls deltas
    body["messages"] = [ask]
    r = await harness.client.post("/v1/chat/completions", json={**body, "stream": True}, headers=USER)
    chunks, done = chunks_of(r.content)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    calls = [d for delta in deltas for d in delta.get("tool_calls", [])]
    assert calls[0]["id"].startswith("toolu_") and calls[0]["function"]["name"] == "get_weather"
    assert orjson.loads("".join(c["function"]["arguments"] for c in calls)) == {"city": "sim"}
    assert [c for c in chunks if c["choices"]][-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert done == "[DONE]"
    assert [e.status for e in harness.emitter.decoded()] == ["ok", "ok", "ok"]


async def test_an_image_goes_up_as_an_image_block(harness: Harness) -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    r = await harness.client.post("/v1/chat/completions", json=chat(content=content), headers=USER)
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["prompt_tokens"] == 3 + 8  # the simulator counts 8 tokens an image


async def test_what_the_provider_cannot_take_is_refused_before_any_hold(harness: Harness) -> None:
    content = [{"type": "image_url", "image_url": {"url": "ftp://example.com/cat.png"}}]
    r = await harness.client.post("/v1/chat/completions", json=chat(content=content), headers=USER)
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "messages[0].content[0].image_url.url"
    r = await harness.client.post(
        "/v1/completions", json={"model": "claude-sim", "prompt": "x"}, headers=USER
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_operation"
    assert harness.billing.reserves == [] and harness.sim.state.stats.by_model == {}


@pytest.mark.parametrize("stream", [False, True])
async def test_an_upstream_refusal_comes_back_in_openais_envelope(harness: Harness, stream: bool) -> None:
    r = await harness.client.post(
        "/v1/chat/completions", json=chat("claude-ratelimited", stream=stream), headers=USER
    )
    assert r.status_code == 429
    assert r.json() == {
        "error": {
            "message": "The simulated upstream answered 429.",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    [event] = harness.emitter.decoded()
    assert (event.status, event.cost_micros) == ("upstream_error", 0)
    assert len(harness.billing.releases) == 1


@pytest.mark.parametrize("model", ["claude-overloaded", "claude-nokey"])
async def test_upstream_failures_are_502(harness: Harness, model: str) -> None:
    # 529 overloaded; 401 from the simulator when the model has no key: neither is the caller's to fix
    r = await harness.client.post("/v1/chat/completions", json=chat(model), headers=USER)
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_error"
    assert [e.cost_micros for e in harness.emitter.decoded()] == [0]


async def test_an_error_event_mid_stream_is_relayed_and_what_was_sent_is_billed(harness: Harness) -> None:
    body = chat("claude-streamfail", max_tokens=9, stream=True)
    r = await harness.client.post("/v1/chat/completions", json=body, headers=USER)
    chunks, done = chunks_of(r.content)
    assert done == "[DONE]"
    assert chunks[-1]["error"]["code"] == "overloaded_error"
    sent = [c for c in chunks if c.get("choices") and c["choices"][0]["delta"].get("content")]
    assert len(sent) == 2
    [event] = harness.emitter.decoded()
    assert event.tokens_estimated and event.tokens_out == 2  # the relay's rule for a stream without usage
    assert event.cost_micros > 0


async def test_product_routes_use_the_provider_too(harness: Harness) -> None:
    body = {
        "provider": "anthropic",
        "model": "claude-sim",
        "messages": [{"role": "user", "content": "hi there"}],
    }
    r = await harness.client.post("/chat/completions", json={**body, "max_tokens": 4}, headers=USER)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["data"] == "tok0 tok1 tok2 tok3" and data["finish_reason"] == "length"
    r = await harness.client.post(
        "/chat/completions", json={**body, "max_tokens": 3, "stream": True}, headers=USER
    )
    parts = [orjson.loads(e) for e in sse_events(r.content)[:-1]]
    assert parts[-1]["done"] is True and parts[-1]["data"] == "tok0 tok1 tok2 "
    r = await harness.client.post(
        "/api/v1/chat", json={"model": "claude-sim", "messages": body["messages"]}, headers=USER
    )
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"].startswith("tok0")
    r = await harness.client.post(
        "/chat/completions",
        json={**body, "model": "claude-ratelimited", "provider": "anthropic"},
        headers=USER,
    )
    assert r.status_code == 429
    assert r.json()["message"] == "The simulated upstream answered 429."
    assert [e.provider for e in harness.emitter.decoded()] == ["anthropic"] * 4
