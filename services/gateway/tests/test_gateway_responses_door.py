"""The Responses door: POST /v1/responses. Pure translations both ways, the stream translator, the
routes through the app (holds, charges, usage events, OpenAI's error envelope), and the official
`openai` SDK's `client.responses` against the app."""

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

from tollgate.common.errors import InvalidRequest
from tollgate.gateway.completions.streaming import StreamOutcome
from tollgate.gateway.operations.service import Result
from tollgate.gateway.pricing.cost import Usage
from tollgate.gateway.responses_door.answer import response_shell, responses_answer
from tollgate.gateway.responses_door.input_items import chat_messages
from tollgate.gateway.responses_door.request import parse_responses_request
from tollgate.gateway.responses_door.stream import ResponsesStreamRelay

KEY = {"Authorization": "Bearer user-key"}
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}
PERSON_FORMAT = {
    "type": "json_schema",
    "name": "person",
    "schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
    "strict": True,
}


def cost(tokens_in: int, tokens_out: int) -> int:
    return tokens_in * 2 + tokens_out * 6  # the fixtures' prices: 2 and 6 micro-credits a token


# -- pure translations -------------------------------------------------------------------------


def test_instructions_messages_and_function_turns_become_chat_messages() -> None:
    image = {"type": "input_image", "image_url": "data:image/png;base64,iVBO", "detail": "low"}
    messages = chat_messages(
        "Be brief.",
        [
            {"role": "developer", "content": "Answer in English."},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is here?"},
                    image,
                    {"type": "input_image", "image_url": "https://x.test/a.jpg"},
                ],
            },
            {"role": "assistant", "content": [{"type": "output_text", "text": "Let me look."}]},
            {"type": "reasoning", "id": "rs_1", "summary": []},  # another model's: dropped
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city":"Oslo"}',
            },
            {
                "type": "function_call",
                "call_id": "call_2",
                "name": "get_weather",
                "arguments": '{"city":"Rome"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "rain"},
            {
                "type": "function_call_output",
                "call_id": "call_2",
                "output": [
                    {"type": "input_text", "text": "sun"},
                    {"type": "input_image", "image_url": "https://x.test/sky.png"},
                ],
            },
            {"role": "user", "content": "And tomorrow?"},
        ],
    )
    assert messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Answer in English."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is here?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
        {"role": "tool", "tool_call_id": "call_2", "content": "sun"},
        # a tool output's image follows the run of tool messages, as the user's
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.test/sky.png"}}]},
        {"role": "user", "content": "And tomorrow?"},
    ]
    assert chat_messages(None, "Hi") == [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"model": None}, "model"),
        ({"input": []}, "input"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
        ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0]",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]},
            "input[0].content[0].image_url",
        ),
        (
            {"input": [{"role": "system", "content": [{"type": "input_image", "image_url": "https://x"}]}]},
            "input[0].content",
        ),
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"background": True}, "background"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"tools": [{"type": "file_search", "vector_store_ids": ["vs"]}]}, "tools[0].type"),
        ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice.type"),
        ({"tool_choice": {"type": "function", "name": "nope"}}, "tool_choice.name"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"temperature": 3}, "temperature"),
        ({"include": ["reasoning.encrypted_content"]}, "include"),
        ({"truncation": "auto"}, "truncation"),
        ({"frequency_penalty": 1}, "frequency_penalty"),
        ({"stream": "yes"}, "stream"),
    ],
)
def test_what_cannot_be_honoured_is_refused_naming_the_param(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_responses_request({"model": "m", "input": "hi", **extra})
    assert refused.value.param == param, refused.value.message


def test_tools_choice_format_and_sampling_become_chat_fields() -> None:
    parsed = parse_responses_request(
        {
            "model": "m",
            "input": "hi",
            "instructions": "Be brief.",
            "tools": [WEATHER_TOOL],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "parallel_tool_calls": False,
            "text": {"format": PERSON_FORMAT},
            "max_output_tokens": 40,
            "temperature": 0.5,
            "top_p": 0.9,
            "user": "u-1",
            "store": False,
            "metadata": {"ticket": "42"},
            "prompt_cache_key": "k",  # a hint: read, not forwarded
            "stream": True,
        }
    )
    assert (parsed.model, parsed.max_output_tokens, parsed.stream) == ("m", 40, True)
    assert parsed.payload == {
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": WEATHER_TOOL["parameters"],
                    "description": "The weather in a city.",
                    "strict": True,
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": PERSON_FORMAT["schema"], "strict": True},
        },
        "max_tokens": 40,
        "temperature": 0.5,
        "top_p": 0.9,
        "user": "u-1",
    }
    echo = parsed.echo
    assert echo["tools"] == [WEATHER_TOOL] and echo["text"] == {"format": PERSON_FORMAT}
    assert (echo["store"], echo["metadata"], echo["parallel_tool_calls"]) == (False, {"ticket": "42"}, False)
    defaults = parse_responses_request(
        {"model": "m", "input": "hi", "text": {"format": {"type": "json_object"}}}
    )
    assert defaults.payload["response_format"] == {"type": "json_object"}
    assert (defaults.echo["store"], defaults.echo["tool_choice"], defaults.echo["tools"]) == (
        True,
        "auto",
        [],
    )
    assert "max_tokens" not in defaults.payload  # as chat: the hold uses the model's default


def test_a_chat_answer_becomes_a_response_with_billed_usage() -> None:
    shell = response_shell("req_abc", "gpt-sim", 1700000000, {"store": True})
    call = {"id": "call_9", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    data = {
        "choices": [{"message": {"content": "Hi there", "tool_calls": [call]}, "finish_reason": "tool_calls"}]
    }
    body = responses_answer(
        data, shell=shell, request_id="req_abc", usage=Usage(12, 5, cached_in=4, reasoning=2)
    )
    assert (body["id"], body["object"], body["status"], body["incomplete_details"]) == (
        "resp_abc",
        "response",
        "completed",
        None,
    )
    message, function_call = body["output"]
    assert message == {
        "id": "msg_abc",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "Hi there", "annotations": [], "logprobs": []}],
    }
    assert function_call["id"].startswith("fc_")
    assert {k: function_call[k] for k in ("type", "call_id", "name", "arguments", "status")} == {
        "type": "function_call",
        "call_id": "call_9",
        "name": "f",
        "arguments": '{"a": 1}',
        "status": "completed",
    }
    assert body["usage"] == {
        "input_tokens": 12,
        "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 17,
    }
    cut = responses_answer(
        {"choices": [{"message": {"content": "tok"}, "finish_reason": "length"}]},
        shell=shell,
        request_id="req_abc",
        usage=Usage(1, 1),
    )
    assert (cut["status"], cut["incomplete_details"], cut["output"][0]["status"]) == (
        "incomplete",
        {"reason": "max_output_tokens"},
        "incomplete",
    )


# -- the stream translator ---------------------------------------------------------------------


class Chunks(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes], *, hang: bool = False, fail: bool = False) -> None:
        self.chunks, self.hang, self.fail, self.closed = chunks, hang, fail, False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.hang:
            await asyncio.Event().wait()
        if self.fail:
            raise httpx.ReadError("reset")

    async def aclose(self) -> None:
        self.closed = True


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return b"data: " + orjson.dumps({"id": "c", "choices": choices, **extra}) + b"\r\n\r\n"


def relay(stream: Chunks, outcomes: list[StreamOutcome]) -> ResponsesStreamRelay:
    def settle(outcome: StreamOutcome) -> Result:
        if not outcomes:
            outcomes.append(outcome)
        usage = outcome.usage or Usage(9, outcome.content_chunks)
        return Result("req_1", {}, usage, False, 0, 0, 0, None)  # type: ignore[arg-type]

    shell = response_shell("req_1", "gpt-sim", 1, {})
    return ResponsesStreamRelay(httpx.Response(200, stream=stream), shell, "req_1", settle)


def parse_events(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for frame in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        if frame:
            event, data = frame.split(b"\n")
            name = event.removeprefix(b"event: ").decode()
            payload = orjson.loads(data.removeprefix(b"data: "))
            assert payload["type"] == name  # the event line names the data's type
            out.append((name, payload))
    assert [e["sequence_number"] for _, e in out] == list(range(len(out)))
    return out


async def test_text_then_tool_call_are_framed_as_responses_events() -> None:
    tool_start = {"index": 0, "id": "call_9", "type": "function", "function": {"name": "f", "arguments": ""}}
    raw = (
        chunk({"role": "assistant", "content": "Hel"})
        + chunk({"content": "lo"})
        + chunk({"tool_calls": [tool_start]})
        + chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]})
        + chunk({"tool_calls": [{"index": 0, "function": {"arguments": " 1}"}}]})
        + chunk({}, "tool_calls")
        + chunk(None, usage={"prompt_tokens": 12, "completion_tokens": 5})
        + b"data: [DONE]\r\n\r\n"
    )
    outcomes: list[StreamOutcome] = []
    pieces = Chunks([raw[i : i + 9] for i in range(0, len(raw), 9)])
    events = parse_events(b"".join([part async for part in relay(pieces, outcomes).events()]))
    assert [name for name, _ in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[4][1] == {
        "type": "response.output_text.delta",
        "sequence_number": 4,
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "delta": "Hel",
        "logprobs": [],
    }
    assert events[6][1]["text"] == "Hello"
    added = events[9][1]
    assert (added["output_index"], added["item"]["call_id"], added["item"]["name"]) == (1, "call_9", "f")
    assert events[12][1]["arguments"] == '{"a": 1}'
    final = events[-1][1]["response"]
    assert final["status"] == "completed" and final["id"] == "resp_1"
    assert [item["type"] for item in final["output"]] == ["message", "function_call"]
    assert final["output"][1]["arguments"] == '{"a": 1}' and final["output"][1]["id"] == added["item"]["id"]
    assert (final["usage"]["input_tokens"], final["usage"]["output_tokens"]) == (12, 5)
    assert outcomes == [StreamOutcome("ok", Usage(12, 5), 5)]


async def test_a_stream_cut_by_the_token_limit_ends_incomplete() -> None:
    raw = chunk({"content": "tok"}, "length") + chunk(
        None, usage={"prompt_tokens": 3, "completion_tokens": 1}
    )
    events = parse_events(b"".join([p async for p in relay(Chunks([raw]), []).events()]))
    name, last = events[-1]
    assert name == "response.incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert last["response"]["output"][0]["status"] == "incomplete"


async def test_client_going_away_is_billed_for_the_chunks_relayed_and_stops_the_upstream() -> None:
    outcomes: list[StreamOutcome] = []
    stream = Chunks([chunk({"content": "a"}), chunk({"content": "b"})], hang=True)
    events = relay(stream, outcomes).events()
    received = [await events.__anext__() for _ in range(3)]  # created + in_progress, then the chunks
    assert b"response.created" in received[0] and b"output_text.delta" in received[2]
    await events.aclose()  # what Starlette does when the client disconnects
    await asyncio.sleep(0)
    assert outcomes == [StreamOutcome("client_disconnected", None, 2)]
    assert stream.closed


async def test_an_upstream_failing_mid_stream_ends_with_response_failed() -> None:
    outcomes: list[StreamOutcome] = []
    body = b"".join([p async for p in relay(Chunks([chunk({"content": "a"})], fail=True), outcomes).events()])
    name, last = parse_events(body)[-1]
    assert name == "response.failed"
    response = last["response"]
    assert response["status"] == "failed"
    assert response["error"] == {"code": "server_error", "message": "The upstream model's stream failed."}
    assert response["output"][0]["status"] == "incomplete" and response["usage"]["output_tokens"] == 1
    assert outcomes == [StreamOutcome("upstream_error", None, 1)]


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
