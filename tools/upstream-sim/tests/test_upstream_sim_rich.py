"""The simulator's rich answers in OpenAI's dialect (rich.py): tools, response_format, content parts."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from tollgate.upstream_sim.app import create_app
from tollgate.upstream_sim.rich import example_of

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "unit": {"enum": ["c", "f"]},
            },
            "required": ["city", "days"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}


@pytest.fixture
def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app()), base_url="http://sim")


def _chunks(body: bytes) -> list[dict[str, Any]]:
    events = [e.removeprefix(b"data: ") for e in body.split(b"\n\n") if e]
    assert events[-1] == b"[DONE]"
    return [orjson.loads(e) for e in events[:-1]]


async def _chat(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/chat/completions", json={"model": "sim-model", **body})
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_example_of_fills_required_properties_with_their_types() -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "size": {"type": ["null", "number"]},
            "inner": {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]},
            "optional": {"type": "string"},
        },
        "required": ["name", "tags", "size", "inner"],
    }
    assert example_of(schema) == {"name": "sim", "tags": ["sim"], "size": 1.5, "inner": {"ok": True}}


async def test_tool_named_in_the_prompt_is_called_with_arguments_from_its_schema(
    client: httpx.AsyncClient,
) -> None:
    data = await _chat(
        client, messages=[{"role": "user", "content": "use get_weather please"}], tools=[TIME, WEATHER]
    )
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == {"city": "sim", "days": 1}
    assert data["usage"]["completion_tokens"] >= 1


async def test_tool_choice_forces_names_or_forbids(client: httpx.AsyncClient) -> None:
    hello = [{"role": "user", "content": "hello"}]
    forced = await _chat(
        client,
        messages=hello,
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert forced["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_time"
    required = await _chat(client, messages=hello, tools=[WEATHER, TIME], tool_choice="required")
    assert required["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
    none = await _chat(
        client, messages=[{"role": "user", "content": "get_weather"}], tools=[WEATHER], tool_choice="none"
    )
    assert "tool_calls" not in none["choices"][0]["message"]
    assert none["choices"][0]["finish_reason"] == "stop"
    plain = await _chat(client, messages=hello, tools=[WEATHER])  # "auto", and no tool named
    assert plain["choices"][0]["message"]["content"].startswith("tok0")


async def test_streamed_tool_call_arrives_as_deltas_that_join_to_the_arguments(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/chat/completions",
        json={
            "model": "sim-model",
            "messages": [{"role": "user", "content": "get_weather"}],
            "tools": [WEATHER],
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    chunks = _chunks(response.content)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    first = deltas[0]["tool_calls"][0]
    assert deltas[0]["role"] == "assistant"
    assert first["function"] == {"name": "get_weather", "arguments": ""} and first["id"].startswith("call_")
    pieces = [d["tool_calls"][0]["function"]["arguments"] for d in deltas[1:] if "tool_calls" in d]
    assert len(pieces) > 1  # in pieces, as OpenAI streams them
    assert orjson.loads("".join(pieces)) == {"city": "sim", "days": 1}
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] >= 1


async def test_response_format_json_schema_and_json_object(client: httpx.AsyncClient) -> None:
    schema = {
        "type": "object",
        "properties": {"title": {"type": "string"}, "n": {"type": "integer"}},
        "required": ["title", "n"],
    }
    data = await _chat(
        client,
        messages=[{"role": "user", "content": "a title"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "t", "schema": schema, "strict": True},
        },
    )
    assert orjson.loads(data["choices"][0]["message"]["content"]) == {"title": "sim", "n": 1}
    data = await _chat(
        client, messages=[{"role": "user", "content": "x"}], response_format={"type": "json_object"}
    )
    assert isinstance(orjson.loads(data["choices"][0]["message"]["content"]), dict)
    streamed = await client.post(
        "/v1/chat/completions",
        json={
            "model": "sim-model",
            "messages": [{"role": "user", "content": "a title"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "t", "schema": schema}},
            "stream": True,
        },
    )
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in _chunks(streamed.content))
    assert orjson.loads(text) == {"title": "sim", "n": 1}


async def test_echo_models_list_the_content_parts_received(client: httpx.AsyncClient) -> None:
    parts = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}},
    ]
    response = await client.post(
        "/v1/chat/completions", json={"model": "sim-echo", "messages": [{"role": "user", "content": parts}]}
    )
    content = response.json()["choices"][0]["message"]["content"]
    assert content == "parts: text=1 image_url=2 (data=1, http=1) file=1 input_audio=0"
