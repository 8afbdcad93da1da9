"""The Responses door through the app: POST /v1/responses (holds, charges, usage events, OpenAI's
error envelope), and the official `openai` SDK's `client.responses` against the app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import httpx2
import openai
import orjson
import pytest
from gateway_fakes import Harness, entry
from responses_door_cases import PERSON_FORMAT, WEATHER_TOOL, chunk, parse_events

KEY = {"Authorization": "Bearer user-key"}


def cost(tokens_in: int, tokens_out: int) -> int:
    return tokens_in * 2 + tokens_out * 6  # the fixtures' prices: 2 and 6 micro-credits a token


# -- routes through the app --------------------------------------------------------------------


def scripted_upstream(seen: list[dict[str, Any]]) -> httpx.AsyncClient:
    """An OpenAI-compatible upstream, streamed or not, reporting 11 prompt and 9 completion tokens
    and keeping each request body in `seen`. Offered tools and no tool result yet, it calls
    get_weather(city="Oslo"); asked for a JSON schema, it answers {"name": "Ada"}; otherwise it says
    "It rains." (cut short, finish_reason "length", when max_tokens is 1)."""

    def handler(request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content)
        seen.append(body)
        usage = {"prompt_tokens": 11, "completion_tokens": 9, "total_tokens": 20}
        message: dict[str, Any] = {"role": "assistant", "content": "It rains."}
        finish = "length" if body.get("max_tokens") == 1 else "stop"
        if body.get("tools") and body["messages"][-1]["role"] != "tool":
            call = {"id": "call_w", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
            message, finish = {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
        elif body.get("response_format"):
            message["content"] = '{"name": "Ada"}'
        if not body.get("stream"):
            if message.get("tool_calls"):
                message["tool_calls"][0]["function"]["arguments"] = '{"city": "Oslo"}'
            answer = {
                "id": "c",
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": usage,
            }
            return httpx.Response(200, json=answer)
        if message.get("tool_calls"):
            first = {"index": 0, **message["tool_calls"][0]}
            rest = [{"index": 0, "function": {"arguments": piece}} for piece in ('{"city": ', '"Oslo"}')]
            raw = b"".join(chunk({"tool_calls": [part]}) for part in [first, *rest])
        else:
            text = message["content"]
            raw = b"".join(chunk({"content": text[i : i + 4]}) for i in range(0, len(text), 4))
        raw += chunk({}, finish) + chunk(None, usage=usage) + b"data: [DONE]\n\n"
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=raw)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


@pytest.fixture
def scripted(harness: Harness) -> list[dict[str, Any]]:
    """Adds the model "gpt-scripted" (scripted_upstream) to the harness's catalog."""
    seen: list[dict[str, Any]] = []
    assert harness.catalog is not None
    harness.catalog.by_name["gpt-scripted"] = entry("gpt-scripted", "scripted-model", scripted_upstream(seen))
    return seen


def response_body(**extra: Any) -> dict[str, Any]:
    # the simulator counts words: 2 (instructions) + 3 (input) = 5 prompt tokens
    return {
        "model": "gpt-sim",
        "max_output_tokens": 4,
        "instructions": "Be brief.",
        "input": "say hello please",
        **extra,
    }


async def test_a_response_is_answered_billed_and_recorded(harness: Harness) -> None:
    r = await harness.client.post("/v1/responses", json=response_body(metadata={"t": "1"}), headers=KEY)
    assert r.status_code == 200, r.text
    body = r.json()
    request_id = r.headers["x-request-id"]
    assert r.headers["x-tollgate-deployment"] == "gpt-sim"
    suffix = request_id.removeprefix("req_")
    assert (body["id"], body["object"], body["status"], body["model"]) == (
        f"resp_{suffix}",
        "response",
        "completed",
        "gpt-sim",
    )
    assert body["output"] == [
        {
            "id": f"msg_{suffix}",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [
                {"type": "output_text", "text": "tok0 tok1 tok2 tok3", "annotations": [], "logprobs": []}
            ],
        }
    ]
    assert body["usage"] == {
        "input_tokens": 5,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 4,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 9,
    }
    assert (body["instructions"], body["max_output_tokens"], body["metadata"], body["store"]) == (
        "Be brief.",
        4,
        {"t": "1"},
        True,
    )
    assert (body["previous_response_id"], body["error"], body["tools"], body["tool_choice"]) == (
        None,
        None,
        [],
        "auto",
    )
    [event] = harness.emitter.decoded()
    assert (event.endpoint, event.operation, event.stream, event.status) == (
        "/v1/responses",
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


async def test_a_streamed_response_is_framed_and_billed(harness: Harness) -> None:
    r = await harness.client.post("/v1/responses", json=response_body(stream=True), headers=KEY)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-tollgate-deployment"] == "gpt-sim"
    events = parse_events(r.content)
    names = [name for name, _ in events]
    assert names[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert names[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    text = "".join(e["delta"] for name, e in events if name == "response.output_text.delta")
    assert text == "tok0 tok1 tok2 tok3 "
    final = events[-1][1]["response"]
    assert final["output"][0]["content"][0]["text"] == text
    assert (final["usage"]["input_tokens"], final["usage"]["output_tokens"]) == (5, 4)
    [event] = harness.emitter.decoded()
    assert (event.endpoint, event.stream, event.status, event.cost_micros) == (
        "/v1/responses",
        True,
        "ok",
        cost(5, 4),
    )


async def test_a_stream_failing_before_its_first_token_charges_nothing(harness: Harness) -> None:
    r = await harness.client.post(
        "/v1/responses", json=response_body(model="gpt-breaks-early", stream=True), headers=KEY
    )
    events = parse_events(r.content)
    assert [name for name, _ in events] == ["response.created", "response.in_progress", "response.failed"]
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
        "/v1/responses", json=response_body(model="gpt-breaks-late", stream=True), headers=KEY
    )
    assert parse_events(r.content)[-1][0] == "response.failed"
    [event] = harness.emitter.decoded()
    # no usage reported: the prompt by the gateway's estimate (ceil(25 chars / 4) + 4 a message) + 3 chunks
    assert (event.status, event.tokens_estimated, event.tokens_in, event.tokens_out) == (
        "upstream_error",
        True,
        15,
        3,
    )
    assert event.cost_micros == cost(15, 3)


async def test_a_response_cut_by_max_output_tokens_is_incomplete(
    harness: Harness, scripted: list[dict[str, Any]]
) -> None:
    r = await harness.client.post(
        "/v1/responses", json=response_body(model="gpt-scripted", max_output_tokens=1), headers=KEY
    )
    body = r.json()
    assert (body["status"], body["incomplete_details"]) == ("incomplete", {"reason": "max_output_tokens"})
    assert scripted[0]["max_tokens"] == 1


async def test_bad_input_is_a_400_naming_the_param_and_nothing_is_held(harness: Harness) -> None:
    r = await harness.client.post(
        "/v1/responses", json=response_body(previous_response_id="resp_1"), headers=KEY
    )
    assert r.status_code == 400
    error = r.json()["error"]
    assert (error["type"], error["param"], error["code"]) == (
        "invalid_request_error",
        "previous_response_id",
        "invalid_request",
    )
    assert "not kept" in error["message"]
    r = await harness.client.post(
        "/v1/responses", json=response_body(tools=[{"type": "web_search"}]), headers=KEY
    )
    assert (r.status_code, r.json()["error"]["param"]) == (400, "tools[0].type")
    r = await harness.client.post("/v1/responses", content=b"{not json", headers=KEY)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_json")
    assert harness.billing.reserves == [] and harness.emitter.events == []
    assert harness.sim.state.stats.chat_completions == 0


@pytest.mark.parametrize(
    ("headers", "model", "status", "code"),
    [
        ({}, "gpt-sim", 401, "invalid_api_key"),
        ({"Authorization": "Bearer wrong"}, "gpt-sim", 401, "invalid_api_key"),
        (KEY, "no-such-model", 404, "model_not_found"),
        (KEY, "ft:gpt-sim:org-other:theirs:ftjob-2", 404, "model_not_found"),  # another org's: not shown
        ({"Authorization": "Bearer poor-key"}, "gpt-sim", 402, "insufficient_credits"),
        ({"Authorization": "Bearer quota-key"}, "gpt-sim", 429, "quota_exceeded"),
        (KEY, "gpt-error", 502, None),
        (KEY, "gpt-timeout", 504, None),
    ],
)
async def test_errors_are_in_openais_envelope(
    harness: Harness, headers: dict[str, str], model: str, status: int, code: str | None
) -> None:
    r = await harness.client.post("/v1/responses", json=response_body(model=model), headers=headers)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["message"] and set(error) == {"message", "type", "code", "param"}
    if code is not None:
        assert error["code"] == code
    if status >= 500:  # the upstream failed: its hold went back, nothing charged
        assert harness.billing.releases == [("org-1", harness.billing.reserves[0][2])]
        [event] = harness.emitter.decoded()
        assert event.cost_micros == 0


# -- the official openai SDK against the app ---------------------------------------------------


@pytest.fixture
async def sdk(harness: Harness) -> AsyncIterator[openai.AsyncOpenAI]:
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=harness.app), base_url="http://gateway")
    client = openai.AsyncOpenAI(
        base_url="http://gateway/v1", api_key="user-key", http_client=http, max_retries=0
    )
    yield client
    await client.close()


async def test_sdk_response(harness: Harness, sdk: openai.AsyncOpenAI) -> None:
    response = await sdk.responses.create(
        model="gpt-sim", instructions="Be brief.", input="say hello please", max_output_tokens=3
    )
    assert response.output_text == "tok0 tok1 tok2" and response.status == "completed"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (
        5,
        3,
        8,
    )
    [event] = harness.emitter.decoded()
    assert event.cost_micros == cost(5, 3)
    raw = await sdk.responses.with_raw_response.create(
        model="gpt-sim", input="say hello please", max_output_tokens=3
    )
    assert int(raw.headers["x-tollgate-cost-micros"]) == cost(3, 3)


async def test_sdk_stream(harness: Harness, sdk: openai.AsyncOpenAI) -> None:
    async with sdk.responses.stream(model="gpt-sim", input="count to six", max_output_tokens=6) as stream:
        deltas = [event.delta async for event in stream if event.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert "".join(deltas) == final.output_text == "tok0 tok1 tok2 tok3 tok4 tok5 "
    assert final.usage is not None and (final.usage.input_tokens, final.usage.output_tokens) == (3, 6)
    events = [
        event
        async for event in await sdk.responses.create(
            model="gpt-sim", input="count", max_output_tokens=2, stream=True
        )
    ]
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == "tok0 tok1 "
    assert [(e.stream, e.cost_micros) for e in harness.emitter.decoded()] == [
        (True, cost(3, 6)),
        (True, cost(1, 2)),
    ]


@pytest.mark.parametrize("stream", [False, True])
async def test_sdk_function_call_round_trip(
    harness: Harness, sdk: openai.AsyncOpenAI, scripted: list[dict[str, Any]], stream: bool
) -> None:
    async def create(**kw: Any) -> openai.types.responses.Response:
        if not stream:
            return await sdk.responses.create(model="gpt-scripted", tools=[WEATHER_TOOL], **kw)  # type: ignore[list-item]
        async with sdk.responses.stream(model="gpt-scripted", tools=[WEATHER_TOOL], **kw) as events:  # type: ignore[list-item]
            return await events.get_final_response()

    asked: list[Any] = [{"role": "user", "content": "Weather in Oslo?"}]
    first = await create(input=asked)
    [call] = first.output
    assert call.type == "function_call"
    assert (call.name, call.arguments, call.call_id) == ("get_weather", '{"city": "Oslo"}', "call_w")
    answer = {"type": "function_call_output", "call_id": call.call_id, "output": "rain"}
    second = await create(input=[*asked, call, answer])
    assert second.output_text == "It rains."
    assert scripted[1]["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_w",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_w", "content": "rain"},
    ]
    assert [e.cost_micros for e in harness.emitter.decoded()] == [cost(11, 9), cost(11, 9)]


async def test_sdk_text_format_json_schema_is_passed_through(
    sdk: openai.AsyncOpenAI, scripted: list[dict[str, Any]]
) -> None:
    response = await sdk.responses.create(model="gpt-scripted", input="Who?", text={"format": PERSON_FORMAT})  # type: ignore[typeddict-item]
    assert orjson.loads(response.output_text) == {"name": "Ada"}
    assert response.text is not None and response.text.format is not None
    assert response.text.format.type == "json_schema"
    assert scripted[0]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "person", "schema": PERSON_FORMAT["schema"], "strict": True},
    }


async def test_sdk_refusals_hold_and_charge_nothing(harness: Harness, sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as unsupported:
        await sdk.responses.create(model="gpt-sim", input="hi", previous_response_id="resp_1")
    assert unsupported.value.param == "previous_response_id"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as built_in:
        await sdk.responses.create(model="gpt-sim", input="hi", tools=[{"type": "web_search"}])
    assert built_in.value.param == "tools[0].type"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError):
        await sdk.responses.create(model="gpt-sim", input="hi", background=True)
    with pytest.raises(openai.NotFoundError) as missing:
        await sdk.responses.create(model="no-such-model", input="hi")
    assert missing.value.code == "model_not_found"
    not_kept = await sdk.responses.create(model="gpt-sim", input="hi", store=True, max_output_tokens=1)
    assert not_kept.store is True  # accepted; nothing is stored (docs/providers.md)
    assert len(harness.billing.reserves) == 1 and len(harness.emitter.events) == 1
