"""Models whose upstream speaks Bedrock's Converse API, called through the gateway's OpenAI-shaped
routes against the in-process simulator's /model/{id}/converse[-stream] (catalog entries:
gateway_fakes.bedrock_entries; prices per token in micro-credits: input 2, cached input 1,
cache write 3, output 6)."""

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


def chat(model: str = "bedrock-sim", content: Any = "hello there world", **fields: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 4, **fields}


def chunks_of(body: bytes) -> tuple[list[dict[str, Any]], str]:
    events = sse_events(body)
    return [orjson.loads(e) for e in events[:-1]], events[-1]


async def test_non_streamed_answer_is_charged_exactly(harness: Harness) -> None:
    r = await harness.client.post("/v1/chat/completions", json=chat(), headers=USER)
    assert r.status_code == 200, r.text
    data = r.json()
    [choice] = data["choices"]
    assert choice["message"] == {"role": "assistant", "content": "tok0 tok1 tok2 tok3"}
    assert choice["finish_reason"] == "length"
    assert (data["usage"]["prompt_tokens"], data["usage"]["completion_tokens"]) == (3, 4)
    stats = harness.sim.state.stats
    assert (stats.converse, stats.chat_completions) == (1, 0)
    assert stats.by_model == {"anthropic.claude-sim-v1:0": 1}  # the modelId made it through the URL
    [event] = harness.emitter.decoded()
    assert (event.provider, event.status) == ("bedrock-converse", "ok")
    assert event.cost_micros == 3 * 2 + 4 * 6


async def test_streamed_answer_is_openai_chunks_with_usage(harness: Harness) -> None:
    body = chat(stream=True, stream_options={"include_usage": True})
    r = await harness.client.post("/v1/chat/completions", json=body, headers=USER)
    assert r.status_code == 200, r.text
    chunks, done = chunks_of(r.content)
    assert done == "[DONE]"
    content = [c for c in chunks if c["choices"]]
    assert content[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in content) == "tok0 tok1 tok2 tok3 "
    assert content[-1]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 4
    [event] = harness.emitter.decoded()
    assert (event.tokens_estimated, event.cost_micros) == (False, 3 * 2 + 4 * 6)


@pytest.mark.parametrize("stream", [False, True])
async def test_cached_tokens_are_priced_at_the_cached_price(harness: Harness, stream: bool) -> None:
    words = "one two three four five six seven eight"
    body = chat("bedrock-cached", content=words, stream=stream, stream_options={"include_usage": True})
    if not stream:
        body.pop("stream_options")
    r = await harness.client.post("/v1/chat/completions", json=body, headers=USER)
    assert r.status_code == 200, r.text
    [event] = harness.emitter.decoded()
    # 8 prompt tokens: 2 read from the cache, 4 written, 2 fresh; 4 out
    assert event.cost_micros == 2 * 2 + 2 * 1 + 4 * 3 + 4 * 6


@pytest.mark.parametrize("stream", [False, True])
async def test_tools_come_back_as_tool_calls(harness: Harness, stream: bool) -> None:
    body = chat(content="weather? use get_weather", tools=[WEATHER_TOOL], stream=stream)
    r = await harness.client.post("/v1/chat/completions", json=body, headers=USER)
    assert r.status_code == 200, r.text
    if not stream:
        [choice] = r.json()["choices"]
        assert choice["finish_reason"] == "tool_calls"
        [call] = choice["message"]["tool_calls"]
        assert call["function"]["name"] == "get_weather"
        assert orjson.loads(call["function"]["arguments"]) == {"city": "sim"}
        return
    chunks, done = chunks_of(r.content)
    calls = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in chunks
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    assert calls[0]["function"]["name"] == "get_weather"
    assert orjson.loads("".join(c["function"]["arguments"] for c in calls)) == {"city": "sim"}
    assert [c for c in chunks if c["choices"]][-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert done == "[DONE]"


async def test_an_image_goes_up_as_an_image_block(harness: Harness) -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    r = await harness.client.post("/v1/chat/completions", json=chat(content=content), headers=USER)
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["prompt_tokens"] == 3 + 8  # the simulator counts 8 tokens an image


async def test_an_http_image_is_refused_before_any_hold(harness: Harness) -> None:
    content = [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]
    r = await harness.client.post("/v1/chat/completions", json=chat(content=content), headers=USER)
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "messages[0].content[0].image_url.url"
    assert harness.billing.reserves == [] and harness.sim.state.stats.by_model == {}


@pytest.mark.parametrize("stream", [False, True])
async def test_an_upstream_refusal_comes_back_in_openais_envelope(harness: Harness, stream: bool) -> None:
    r = await harness.client.post(
        "/v1/chat/completions", json=chat("bedrock-ratelimited", stream=stream), headers=USER
    )
    assert r.status_code == 429
    error = r.json()["error"]
    assert (error["message"], error["type"]) == ("The simulated upstream answered 429.", "rate_limit_error")
    [event] = harness.emitter.decoded()
    assert (event.status, event.cost_micros) == ("upstream_error", 0)


async def test_a_validation_exception_is_a_400(harness: Harness) -> None:
    r = await harness.client.post("/v1/chat/completions", json=chat("bedrock-badrequest"), headers=USER)
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "The simulated upstream answered 400."


async def test_an_exception_mid_stream_is_relayed_and_what_was_sent_is_billed(harness: Harness) -> None:
    body = chat("bedrock-streamfail", max_tokens=9, stream=True)
    r = await harness.client.post("/v1/chat/completions", json=body, headers=USER)
    chunks, _ = chunks_of(r.content)
    assert "error" in chunks[-1] or "error" in orjson.loads(sse_events(r.content)[-1])
    [event] = harness.emitter.decoded()
    assert event.cost_micros > 0


async def test_a_model_without_credentials_is_refused_upstream_as_a_502(harness: Harness) -> None:
    # the simulator answers 403 to an Authorization without an access key id: not the caller's to fix
    r = await harness.client.post("/v1/chat/completions", json=chat("bedrock-nokey"), headers=USER)
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_error"
    assert [e.cost_micros for e in harness.emitter.decoded()] == [0]
