from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from tollgate.upstream_sim.anthropic import IMAGE_TOKENS
from tollgate.upstream_sim.app import create_app

HEADERS = {"x-api-key": "sk-ant-sim", "anthropic-version": "2023-06-01"}
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
    },
}


@pytest.fixture
def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app()), base_url="http://sim")


def body(model: str = "claude-sim", **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 3,
        "messages": [{"role": "user", "content": "a b c"}],
        **extra,
    }


def events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        data = orjson.loads(lines["data"])
        assert data["type"] == lines["event"]
        out.append((lines["event"], data))
    return out


async def test_answer_with_usage(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/messages", json=body(system="be brief"), headers=HEADERS)
    assert r.status_code == 200
    answer = r.json()
    assert answer["type"] == "message"
    assert answer["content"] == [{"type": "text", "text": "tok0 tok1 tok2"}]
    assert answer["stop_reason"] == "max_tokens"  # three tokens, as many as max_tokens allowed
    assert answer["usage"] == {
        "input_tokens": 5,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 3,
    }
    r = await client.post("/v1/messages", json=body(max_tokens=100), headers=HEADERS)
    assert r.json()["stop_reason"] == "end_turn"
    assert (await client.get("/_sim/stats")).json()["messages"] == 2


async def test_headers_are_checked_like_the_real_api(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/messages", json=body(), headers={"anthropic-version": "2023-06-01"})
    assert r.status_code == 401
    assert r.json() == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "x-api-key header is required"},
    }
    r = await client.post("/v1/messages", json=body(), headers={"x-api-key": "k"})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    r = await client.post("/v1/messages", json={**body(), "max_tokens": None}, headers=HEADERS)
    assert r.status_code == 400


@pytest.mark.parametrize(
    ("model", "status", "error_type"),
    [
        ("claude-sim-error", 500, "api_error"),
        ("claude-sim-overloaded", 529, "overloaded_error"),
        ("claude-sim-ratelimited", 429, "rate_limit_error"),
    ],
)
async def test_cued_errors_in_anthropics_envelope(
    client: httpx.AsyncClient, model: str, status: int, error_type: str
) -> None:
    r = await client.post("/v1/messages", json=body(model), headers=HEADERS)
    assert r.status_code == status
    assert r.json()["type"] == "error"
    assert r.json()["error"]["type"] == error_type


async def test_cache_cues_split_the_prompt(client: httpx.AsyncClient) -> None:
    eight = {"role": "user", "content": "one two three four five six seven eight"}
    r = await client.post("/v1/messages", json=body("claude-cachewrite", messages=[eight]), headers=HEADERS)
    assert r.json()["usage"] == {
        "input_tokens": 2,
        "cache_creation_input_tokens": 4,
        "cache_read_input_tokens": 2,
        "output_tokens": 3,
    }
    r = await client.post("/v1/messages", json=body("claude-cachedetail", messages=[eight]), headers=HEADERS)
    assert r.json()["usage"]["cache_read_input_tokens"] == 4
    assert r.json()["usage"]["input_tokens"] == 4


async def test_images_count_and_malformed_blocks_are_refused(client: httpx.AsyncClient) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    url = {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}
    content = [{"type": "text", "text": "what is this"}, image, url]
    r = await client.post(
        "/v1/messages", json=body(messages=[{"role": "user", "content": content}]), headers=HEADERS
    )
    assert r.json()["usage"]["input_tokens"] == 3 + 2 * IMAGE_TOKENS
    broken = [{"type": "image", "source": {"type": "base64"}}]
    r = await client.post(
        "/v1/messages", json=body(messages=[{"role": "user", "content": broken}]), headers=HEADERS
    )
    assert r.status_code == 400


async def test_a_tool_named_in_the_prompt_is_used(client: httpx.AsyncClient) -> None:
    ask = {"role": "user", "content": "What is the weather in Paris? Use get_weather."}
    r = await client.post("/v1/messages", json=body(messages=[ask], tools=[WEATHER]), headers=HEADERS)
    answer = r.json()
    assert answer["stop_reason"] == "tool_use"
    [block] = answer["content"]
    assert block["type"] == "tool_use"
    assert block["name"] == "get_weather"
    assert block["input"] == {"city": "sim", "days": 1}
    # the tool's result comes back: the answer is text
    turns = [
        ask,
        {"role": "assistant", "content": [block]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": block["id"], "content": "sunny"}],
        },
    ]
    r = await client.post("/v1/messages", json=body(messages=turns, tools=[WEATHER]), headers=HEADERS)
    assert r.json()["content"][0]["type"] == "text"
    # not named, not forced: text; forced by tool_choice: the tool
    plain = [{"role": "user", "content": "hello"}]
    r = await client.post("/v1/messages", json=body(messages=plain, tools=[WEATHER]), headers=HEADERS)
    assert r.json()["stop_reason"] != "tool_use"
    forced = body(messages=plain, tools=[WEATHER], tool_choice={"type": "any"})
    assert (await client.post("/v1/messages", json=forced, headers=HEADERS)).json()[
        "stop_reason"
    ] == "tool_use"


async def test_stream_has_the_real_event_sequence(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/messages", json=body("claude-cachewrite", stream=True), headers=HEADERS)
    assert r.headers["content-type"].startswith("text/event-stream")
    seq = events(r.content)
    names = [name for name, _ in seq]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert seq[0][1]["message"]["usage"]["output_tokens"] == 1
    assert "".join(d["delta"]["text"] for n, d in seq if n == "content_block_delta") == "tok0 tok1 tok2 "
    assert seq[7][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
        "usage": {"output_tokens": 3},
    }
    assert (await client.get("/_sim/stats")).json()["streams_completed"] == 1


async def test_stream_of_a_tool_use_sends_its_input_in_pieces(client: httpx.AsyncClient) -> None:
    ask = {"role": "user", "content": "call get_weather please"}
    payload = body(messages=[ask], tools=[WEATHER], stream=True)
    seq = events((await client.post("/v1/messages", json=payload, headers=HEADERS)).content)
    assert seq[1][1]["content_block"]["type"] == "tool_use"
    pieces = [d["delta"]["partial_json"] for n, d in seq if n == "content_block_delta"]
    assert pieces[0] == ""
    assert orjson.loads("".join(pieces)) == {"city": "sim", "days": 1}
    assert seq[-2][1]["delta"]["stop_reason"] == "tool_use"


async def test_streamfail_ends_with_an_error_event(client: httpx.AsyncClient) -> None:
    seq = events(
        (
            await client.post(
                "/v1/messages", json=body("claude-streamfail", stream=True, max_tokens=9), headers=HEADERS
            )
        ).content
    )
    assert seq[-1] == (
        "error",
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    )
    assert sum(1 for n, _ in seq if n == "content_block_delta") == 2
