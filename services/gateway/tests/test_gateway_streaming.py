from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import orjson

from tollgate.gateway.completions.streaming import SseRelay, StreamOutcome
from tollgate.gateway.pricing.cost import Usage


class Chunks(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes], hang: bool = False) -> None:
        self.chunks = chunks
        self.hang = hang
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.hang:
            await asyncio.Event().wait()

    async def aclose(self) -> None:
        self.closed = True


def chunk(content: str, **extra: object) -> bytes:
    body = {"id": "c1", "model": "upstream-id", "choices": [{"index": 0, "delta": {"content": content}}]}
    return b"data: " + orjson.dumps({**body, **extra}) + b"\r\n\r\n"


def relay(stream: Chunks, wants_usage: bool, outcomes: list[StreamOutcome]) -> SseRelay:
    return SseRelay(httpx.Response(200, stream=stream), "public", wants_usage, lambda: 7, outcomes.append)


async def test_crlf_events_split_across_reads_are_relayed_and_counted() -> None:
    raw = (
        chunk("a")
        + chunk("b")
        + chunk("", usage={"prompt_tokens": 3, "completion_tokens": 2})
        + b"data: [DONE]\r\n\r\n"
    )
    pieces = [raw[i : i + 7] for i in range(0, len(raw), 7)]
    outcomes: list[StreamOutcome] = []
    out = b"".join([part async for part in relay(Chunks(pieces), False, outcomes).events()])
    events = [e for e in out.split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]"
    assert len(events) == 4
    assert all(orjson.loads(e[6:])["model"] == "public" for e in events[:-1])
    assert b"usage" not in out  # usage inside a content chunk is stripped when not asked for
    assert outcomes == [StreamOutcome("ok", Usage(3, 2), 2)]


async def test_client_going_away_bills_what_was_generated() -> None:
    outcomes: list[StreamOutcome] = []
    stream = Chunks([chunk("a"), chunk("b"), chunk("c")], hang=True)
    events = relay(stream, True, outcomes).events()
    received = [await events.__anext__() for _ in range(3)]
    assert len(received) == 3
    await events.aclose()  # what Starlette does when the client disconnects
    await asyncio.sleep(0)
    assert outcomes == [StreamOutcome("client_disconnected", None, 3)]
    assert stream.closed
