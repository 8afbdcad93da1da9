"""The Responses door's stream translator: an OpenAI-compatible chat stream relayed as the Responses
API's server-sent events, cut short, and what it settles when the client goes away or the
upstream fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
from responses_door_cases import chunk, parse_events

from tollgate.gateway.completions.streaming import StreamOutcome
from tollgate.gateway.operations.service import Result
from tollgate.gateway.pricing.cost import Usage
from tollgate.gateway.responses_door.answer import response_shell
from tollgate.gateway.responses_door.stream import ResponsesStreamRelay

# -- the stream translator ---------------------------------------------------------------------


class Chunks(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes], *, hang: bool = False, fail: bool = False) -> None:
        self.chunks, self.hang, self.fail, self.closed = chunks, hang, fail, False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.chunks:
            yield piece
        if self.hang:
            await asyncio.Event().wait()
        if self.fail:
            raise httpx.ReadError("reset")

    async def aclose(self) -> None:
        self.closed = True


def relay(stream: Chunks, outcomes: list[StreamOutcome]) -> ResponsesStreamRelay:
    def settle(outcome: StreamOutcome) -> Result:
        if not outcomes:
            outcomes.append(outcome)
        usage = outcome.usage or Usage(9, outcome.content_chunks)
        return Result("req_1", {}, usage, False, 0, 0, 0, None)  # type: ignore[arg-type]

    shell = response_shell("req_1", "gpt-sim", 1, {})
    return ResponsesStreamRelay(httpx.Response(200, stream=stream), shell, "req_1", settle)


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
