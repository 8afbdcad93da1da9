"""The Anthropic door's stream translator: an OpenAI-compatible chat stream relayed as Anthropic's
server-sent events, and what it settles when the client goes away or the upstream fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
from anthropic_door_cases import chunk, parse_events

from tollgate.gateway.anthropic_door.stream import MessagesStreamRelay
from tollgate.gateway.completions.streaming import StreamOutcome
from tollgate.gateway.operations.service import Result
from tollgate.gateway.pricing.cost import Usage

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


def relay(stream: Chunks, outcomes: list[StreamOutcome]) -> MessagesStreamRelay:
    def settle(outcome: StreamOutcome) -> Result:
        if not outcomes:
            outcomes.append(outcome)
        usage = outcome.usage or Usage(9, outcome.content_chunks)
        return Result("req_1", {}, usage, False, 0, 0, 0, None)  # type: ignore[arg-type]

    shell = {"id": "msg_1", "type": "message", "content": [], "usage": {"input_tokens": 9}}
    return MessagesStreamRelay(httpx.Response(200, stream=stream), shell, [], settle)


async def test_text_then_tool_call_are_framed_as_anthropic_events() -> None:
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
    body = b"".join(
        [
            part
            async for part in relay(
                Chunks([raw[i : i + 9] for i in range(0, len(raw), 9)]), outcomes
            ).events()
        ]
    )
    events = parse_events(body)
    assert [name for name, _ in events] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[2][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert events[4][1]["delta"] == {"type": "text_delta", "text": "lo"}
    assert events[6][1]["content_block"] == {"type": "tool_use", "id": "call_9", "name": "f", "input": {}}
    assert [e[1]["delta"]["partial_json"] for e in events[7:9]] == ['{"a":', " 1}"]
    assert events[9][1] == {"type": "content_block_stop", "index": 1}
    assert events[10][1]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert events[10][1]["usage"]["output_tokens"] == 5 and events[10][1]["usage"]["input_tokens"] == 12
    assert outcomes == [StreamOutcome("ok", Usage(12, 5), 5)]


async def test_client_going_away_is_billed_for_the_chunks_relayed_and_stops_the_upstream() -> None:
    outcomes: list[StreamOutcome] = []
    stream = Chunks([chunk({"content": "a"}), chunk({"content": "b"})], hang=True)
    events = relay(stream, outcomes).events()
    received = [await events.__anext__() for _ in range(3)]  # start + ping, then the two chunks
    assert b"message_start" in received[0] and b"text_delta" in received[2]
    await events.aclose()  # what Starlette does when the client disconnects
    await asyncio.sleep(0)
    assert outcomes == [StreamOutcome("client_disconnected", None, 2)]
    assert stream.closed


async def test_an_upstream_failing_mid_stream_ends_with_an_error_event() -> None:
    outcomes: list[StreamOutcome] = []
    body = b"".join([p async for p in relay(Chunks([chunk({"content": "a"})], fail=True), outcomes).events()])
    events = parse_events(body)
    assert events[-1] == (
        "error",
        {"type": "error", "error": {"type": "api_error", "message": "The upstream model's stream failed."}},
    )
    assert "message_stop" not in [name for name, _ in events]
    assert outcomes == [StreamOutcome("upstream_error", None, 1)]
