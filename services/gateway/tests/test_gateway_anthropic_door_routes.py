"""The Anthropic door through the app: POST /v1/messages and /v1/messages/count_tokens (holds,
charges, usage events, Anthropic's error envelope), and the official `anthropic` SDK against the
app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import httpx2
import orjson
import pytest
from anthropic_door_cases import WEATHER_TOOL, chunk, parse_events
from gateway_fakes import Harness, entry

KEY = {"x-api-key": "user-key", "anthropic-version": "2023-06-01"}


def cost(tokens_in: int, tokens_out: int) -> int:
    return tokens_in * 2 + tokens_out * 6  # the fixtures' prices: 2 and 6 micro-credits a token


# -- routes through the app --------------------------------------------------------------------


def tool_upstream(seen: list[dict[str, Any]]) -> httpx.AsyncClient:
    """An OpenAI-compatible upstream that always calls get_weather(city="Oslo"), streamed or not,
    reporting 11 prompt and 9 completion tokens; it keeps each request body in `seen`."""

    def handler(request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content)
        seen.append(body)
        call = {
            "id": "call_w",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
        }
        usage = {"prompt_tokens": 11, "completion_tokens": 9, "total_tokens": 20}
        if not body.get("stream"):
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            answer = {
                "id": "c",
                "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
                "usage": usage,
            }
            return httpx.Response(200, json=answer)
        first = {
            "index": 0,
            "id": "call_w",
            "type": "function",
            "function": {"name": "get_weather", "arguments": ""},
        }
        rest = [{"index": 0, "function": {"arguments": piece}} for piece in ('{"city": ', '"Oslo"}')]
        raw = b"".join(chunk({"tool_calls": [part]}) for part in [first, *rest])
        raw += chunk({}, "tool_calls") + chunk(None, usage=usage) + b"data: [DONE]\n\n"
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=raw)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


@pytest.fixture
def tool_bodies(harness: Harness) -> list[dict[str, Any]]:
    """Adds the model "gpt-tools" (tool_upstream) to the harness's catalog."""
    seen: list[dict[str, Any]] = []
    assert harness.catalog is not None
    harness.catalog.by_name["gpt-tools"] = entry("gpt-tools", "tools-model", tool_upstream(seen))
    return seen


def message_body(**extra: Any) -> dict[str, Any]:
    # the simulator counts words: 2 (system) + 3 (user) = 5 prompt tokens
    return {
        "model": "gpt-sim",
        "max_tokens": 4,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "say hello please"}],
        **extra,
    }


async def test_a_message_is_answered_billed_and_recorded(harness: Harness) -> None:
    r = await harness.client.post("/v1/messages", json=message_body(), headers=KEY)
    assert r.status_code == 200, r.text
    body = r.json()
    request_id = r.headers["request-id"]
    assert body == {
        "id": "msg_" + request_id.removeprefix("req_"),
        "type": "message",
        "role": "assistant",
        "model": "gpt-sim",
        "content": [{"type": "text", "text": "tok0 tok1 tok2 tok3"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 5,
            "output_tokens": 4,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        },
    }
    [event] = harness.emitter.decoded()
    assert (event.endpoint, event.operation, event.stream, event.status) == (
        "/v1/messages",
        "chat",
        False,
        "ok",
    )
    assert (event.tokens_in, event.tokens_out) == (5, 4)
    assert event.cost_micros == cost(5, 4) == int(r.headers["x-tollgate-cost-micros"])
    assert (
        harness.billing.reserves[0][2] == request_id and harness.billing.reserves[0][3] >= event.cost_micros
    )
    assert harness.emitter.marked == [event.event_id]


async def test_a_streamed_message_is_framed_and_billed(harness: Harness) -> None:
    r = await harness.client.post("/v1/messages", json=message_body(stream=True), headers=KEY)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = parse_events(r.content.replace(b"\r\n", b"\n"))
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    text = "".join(e["delta"]["text"] for name, e in events if name == "content_block_delta")
    assert text == "tok0 tok1 tok2 tok3 "
    assert events[0][1]["message"]["model"] == "gpt-sim"
    delta = events[-2][1]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert (delta["usage"]["input_tokens"], delta["usage"]["output_tokens"]) == (5, 4)
    [event] = harness.emitter.decoded()
    assert (event.endpoint, event.stream, event.status, event.cost_micros) == (
        "/v1/messages",
        True,
        "ok",
        cost(5, 4),
    )


async def test_a_stream_failing_before_its_first_token_charges_nothing(harness: Harness) -> None:
    r = await harness.client.post(
        "/v1/messages", json=message_body(model="gpt-breaks-early", stream=True), headers=KEY
    )
    events = parse_events(r.content)
    assert [name for name, _ in events] == ["message_start", "ping", "error"]
    for _ in range(50):  # the release runs in a task
        if harness.billing.releases:
            break
        await asyncio.sleep(0.01)
    assert harness.billing.releases == [("org-1", harness.billing.reserves[0][2])]
    [event] = harness.emitter.decoded()
    assert (event.status, event.cost_micros) == ("upstream_error", 0)
    assert harness.emitter.marked == []


async def test_a_stream_failing_after_tokens_bills_the_prompt_and_the_chunks(harness: Harness) -> None:
    r = await harness.client.post(
        "/v1/messages", json=message_body(model="gpt-breaks-late", stream=True), headers=KEY
    )
    assert parse_events(r.content)[-1][0] == "error"
    [event] = harness.emitter.decoded()
    # no usage reported: the prompt by the gateway's estimate (ceil(25 chars / 4) + 4 a message) + 3 chunks
    assert (event.status, event.tokens_estimated, event.tokens_in, event.tokens_out) == (
        "upstream_error",
        True,
        15,
        3,
    )
    assert event.cost_micros == cost(15, 3)


async def test_tools_are_translated_and_a_tool_call_comes_back_as_tool_use(
    harness: Harness, tool_bodies: list[dict[str, Any]]
) -> None:
    request = message_body(
        model="gpt-tools",
        max_tokens=50,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
    )
    r = await harness.client.post("/v1/messages", json=request, headers=KEY)
    assert r.status_code == 200, r.text
    [sent] = tool_bodies
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": WEATHER_TOOL["input_schema"],
                "description": "The weather in a city.",
            },
        }
    ]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert (sent["model"], sent["max_tokens"], sent["stream"]) == ("tools-model", 50, False)
    body = r.json()
    assert body["content"] == [
        {"type": "tool_use", "id": "call_w", "name": "get_weather", "input": {"city": "Oslo"}}
    ]
    assert body["stop_reason"] == "tool_use"
    [event] = harness.emitter.decoded()
    assert event.cost_micros == cost(11, 9)


@pytest.mark.parametrize("stream", [False, True])
async def test_a_model_behind_the_anthropic_provider_keeps_its_cache_classes(
    harness: Harness, stream: bool
) -> None:
    """Any catalog model: here one whose upstream speaks Anthropic (providers/anthropic.py), which
    reports a cache write; Anthropic's input_tokens leave it out, the charge prices it on its own."""
    request = {
        "model": "claude-cached",
        "max_tokens": 5,
        "stream": stream,
        "messages": [{"role": "user", "content": "hello there you"}],
    }
    r = await harness.client.post("/v1/messages", json=request, headers=KEY)
    assert r.status_code == 200, r.text
    usage = parse_events(r.content)[-2][1]["usage"] if stream else r.json()["usage"]
    assert usage == {
        "input_tokens": 2,
        "output_tokens": 5,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 1,
    }
    [event] = harness.emitter.decoded()
    assert (event.tokens_in, event.tokens_cache_write, event.tokens_out) == (3, 1, 5)
    assert event.cost_micros == 2 * 2 + 1 * 3 + 5 * 6


async def test_bad_input_is_a_400_naming_the_field_and_nothing_is_held(harness: Harness) -> None:
    r = await harness.client.post("/v1/messages", json=message_body(max_tokens=None), headers=KEY)
    assert r.status_code == 400
    assert r.json() == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "max_tokens: is required and must be a positive integer.",
        },
        "request_id": r.headers["x-request-id"],
    }
    r = await harness.client.post("/v1/messages", content=b"{not json", headers=KEY)
    assert (r.status_code, r.json()["error"]["type"]) == (400, "invalid_request_error")
    assert harness.billing.reserves == [] and harness.emitter.events == []
    assert harness.sim.state.stats.chat_completions == 0


@pytest.mark.parametrize(
    ("headers", "model", "status", "kind"),
    [
        ({}, "gpt-sim", 401, "authentication_error"),
        ({"x-api-key": "wrong"}, "gpt-sim", 401, "authentication_error"),
        (KEY, "no-such-model", 404, "not_found_error"),
        (KEY, "ft:gpt-sim:org-other:theirs:ftjob-2", 404, "not_found_error"),  # another org's: not shown
        ({"x-api-key": "poor-key"}, "gpt-sim", 402, "billing_error"),
        ({"x-api-key": "budget-key"}, "gpt-sim", 402, "billing_error"),
        ({"x-api-key": "quota-key"}, "gpt-sim", 429, "rate_limit_error"),
        (KEY, "gpt-error", 502, "api_error"),
        (KEY, "gpt-timeout", 504, "api_error"),
    ],
)
async def test_errors_are_in_anthropics_envelope(
    harness: Harness, headers: dict[str, str], model: str, status: int, kind: str
) -> None:
    r = await harness.client.post("/v1/messages", json=message_body(model=model), headers=headers)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == kind and body["error"]["message"]
    if status >= 500:  # the upstream failed: its hold went back, nothing charged
        assert harness.billing.releases == [("org-1", harness.billing.reserves[0][2])]
        [event] = harness.emitter.decoded()
        assert event.cost_micros == 0


async def test_count_tokens_holds_and_charges_nothing(harness: Harness) -> None:
    body = {
        "model": "gpt-sim",
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "say hello please"}],
    }
    r = await harness.client.post("/v1/messages/count_tokens", json=body, headers=KEY)
    assert r.status_code == 200, r.text
    assert r.json() == {"input_tokens": 7 + 2 * 4}  # ceil(25 chars / 4), + 4 a message
    r = await harness.client.post("/v1/messages/count_tokens", json=body)
    assert (r.status_code, r.json()["error"]["type"]) == (401, "authentication_error")
    r = await harness.client.post("/v1/messages/count_tokens", json={**body, "model": "nope"}, headers=KEY)
    assert (r.status_code, r.json()["error"]["type"]) == (404, "not_found_error")
    assert harness.billing.reserves == [] and harness.emitter.events == []
    assert harness.sim.state.stats.chat_completions == 0


# -- the official anthropic SDK against the app ------------------------------------------------


@pytest.fixture
async def sdk(harness: Harness) -> AsyncIterator[anthropic.AsyncAnthropic]:
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=harness.app), base_url="http://gateway")
    client = anthropic.AsyncAnthropic(
        base_url="http://gateway", api_key="user-key", http_client=http, max_retries=0
    )
    yield client
    await client.close()


async def test_sdk_message(harness: Harness, sdk: anthropic.AsyncAnthropic) -> None:
    message = await sdk.messages.create(
        model="gpt-sim",
        max_tokens=3,
        system="Be brief.",
        messages=[{"role": "user", "content": "say hello please"}],
    )
    assert message.content[0].type == "text" and message.content[0].text == "tok0 tok1 tok2"
    assert (message.stop_reason, message.usage.input_tokens, message.usage.output_tokens) == (
        "end_turn",
        5,
        3,
    )
    [event] = harness.emitter.decoded()
    assert event.cost_micros == cost(5, 3)


async def test_sdk_stream(harness: Harness, sdk: anthropic.AsyncAnthropic) -> None:
    async with sdk.messages.stream(
        model="gpt-sim", max_tokens=6, messages=[{"role": "user", "content": "count to six"}]
    ) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "tok0 tok1 tok2 tok3 tok4 tok5 "
    assert (final.usage.input_tokens, final.usage.output_tokens, final.stop_reason) == (3, 6, "end_turn")
    [event] = harness.emitter.decoded()
    assert (event.stream, event.cost_micros) == (True, cost(3, 6))


async def test_sdk_tool_call_streamed_and_not(
    harness: Harness, sdk: anthropic.AsyncAnthropic, tool_bodies: list[dict[str, Any]]
) -> None:
    message = await sdk.messages.create(
        model="gpt-tools",
        max_tokens=50,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
    )
    [block] = message.content
    assert block.type == "tool_use" and (block.name, block.input) == ("get_weather", {"city": "Oslo"})
    assert message.stop_reason == "tool_use"
    async with sdk.messages.stream(
        model="gpt-tools",
        max_tokens=50,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        messages=[
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": [block.model_dump()]},  # type: ignore[list-item]
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "rain"}],
            },
        ],
    ) as stream:
        final = await stream.get_final_message()
    [streamed] = final.content
    assert streamed.type == "tool_use" and streamed.input == {"city": "Oslo"} and streamed.id == "call_w"
    assert (final.stop_reason, final.usage.input_tokens, final.usage.output_tokens) == ("tool_use", 11, 9)
    assert tool_bodies[1]["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_w",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_w", "content": "rain"},
    ]
    assert [e.cost_micros for e in harness.emitter.decoded()] == [cost(11, 9), cost(11, 9)]


async def test_sdk_errors(sdk: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        await sdk.messages.create(
            model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError):
        await sdk.messages.create(model="gpt-sim", max_tokens=0, messages=[{"role": "user", "content": "hi"}])
    count = await sdk.messages.count_tokens(model="gpt-sim", messages=[{"role": "user", "content": "x" * 8}])
    assert count.input_tokens == 2 + 4
