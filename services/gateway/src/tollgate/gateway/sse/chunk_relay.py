"""What the doors' stream relays share: an upstream's OpenAI chat chunks in, another dialect's
server-sent events out (anthropic_door.stream: Anthropic's Messages stream; responses_door.stream:
the Responses API's).

`ChunkRelay` reads the chunks and keeps what accounting needs (the usage, the content chunks relayed,
the finish reason); a subclass writes its dialect's events for the opening, each text and tool
call delta, the closing and a failure. Accounting follows the other relays (SseRelay,
IndoxRouterRelay): `settle` runs exactly once however the stream ends, so a client that goes away is
billed for the prompt and the chunks relayed and the upstream call is closed, and an upstream that
fails before its first token charges nothing.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from typing import Any, NamedTuple

import httpx
import orjson

from tollgate.gateway.completions.streaming import StreamOutcome
from tollgate.gateway.completions.tokens import reported_usage
from tollgate.gateway.pipeline import Result
from tollgate.gateway.pricing.cost import Usage
from tollgate.gateway.providers.base import UpstreamStream
from tollgate.gateway.providers.openai_chat import as_object
from tollgate.gateway.sse.events import EventSplitter, event_data

FAILURES = {
    "upstream_error": "The upstream model's stream failed.",
    "upstream_timeout": "The upstream model stopped responding.",
}


class ToolCallDelta(NamedTuple):
    """OpenAI streams a tool call as deltas of one `index`: the first with its id and name, then
    pieces of its JSON arguments."""

    position: int  # the call's index among the answer's tool calls
    call_id: Any
    name: Any
    arguments: str  # "" where this delta carries none

    @classmethod
    def of(cls, call: dict[str, Any]) -> ToolCallDelta:
        index = call.get("index")
        function = as_object(call.get("function"))
        arguments = function.get("arguments")
        return cls(
            index if isinstance(index, int) else 0,
            call.get("id"),
            function.get("name"),
            arguments if isinstance(arguments, str) else "",
        )


class ChunkRelay(ABC):
    def __init__(
        self,
        upstream: UpstreamStream,  # OpenAI chunks: the response, or its provider's translation
        shell: dict[str, Any],
        settle: Callable[[StreamOutcome], Result],
    ) -> None:
        """`shell`: the answer the opening events carry, before any content."""
        self._upstream = upstream
        self._shell = shell
        self._settle = settle
        self._status = "client_disconnected"  # until the upstream completes or fails
        self._usage: Usage | None = None
        self._chunks = 0  # upstream chunks with content: what a cut stream is billed for
        self._finish_reason: Any = None
        self._matched: Any = None  # the stop sequence a server says ended the text (vLLM)
        self._finished = False

    @abstractmethod
    def _opening(self) -> bytes:
        """The events before any content."""

    @abstractmethod
    def _text(self, text: str) -> bytes:
        """The events for a piece of the answer's text."""

    @abstractmethod
    def _tool(self, call: ToolCallDelta) -> bytes:
        """The events for a tool call's delta."""

    @abstractmethod
    def _close_open(self) -> bytes:
        """The events that end the block or item being streamed, if any."""

    @abstractmethod
    def _ending(self, result: Result) -> bytes:
        """The last events of a stream the upstream completed, with what was billed."""

    @abstractmethod
    def _failed(self, result: Result) -> bytes:
        """The event that ends a stream the upstream failed (FAILURES[self._status] says how)."""

    def _text_of(self, delta: dict[str, Any]) -> Any:
        return delta.get("content")

    async def events(self) -> AsyncIterator[bytes]:
        splitter = EventSplitter()
        try:
            yield self._opening()
            try:
                async for raw in self._upstream.aiter_bytes():
                    for event in splitter.feed(raw):
                        out = self._translate(event)
                        if out:
                            yield out
                        if self._status != "client_disconnected":
                            break
                    if self._status != "client_disconnected":
                        break  # the upstream sent an error object
            except httpx.TimeoutException:
                self._status = "upstream_timeout"
            except httpx.HTTPError:
                self._status = "upstream_error"
            rest = splitter.rest.strip()
            if self._status == "client_disconnected" and rest:
                out = self._translate(rest)
                if out:
                    yield out
            if self._status in FAILURES:
                yield self._failed(self.finish())
                return
            self._status = "ok"
            closing = self._close_open()
            result = self.finish()
            if result.marking is not None:
                await result.marking  # the hold's mark leaves before the stream's last event
            yield closing + self._ending(result)
        finally:
            self.finish()

    def finish(self) -> Result:
        """Accounts the stream (Operations.settle does it once) and closes the upstream call, which
        stops the generation when the client went away; it also runs while the task is cancelled."""
        result = self._settle(StreamOutcome(self._status, self._usage, self._chunks))
        if not self._finished:
            self._finished = True
            # closing may await: never inside a cancelled scope, so in a task
            asyncio.get_running_loop().create_task(self._upstream.aclose())
        return result

    def _translate(self, event: bytes) -> bytes:
        data = event_data(event)
        if not data or data == b"[DONE]":
            return b""
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return b""
        if not isinstance(chunk, dict):
            return b""
        if "error" in chunk:
            self._status = "upstream_error"
            return b""
        usage = reported_usage(chunk.get("usage"))
        if usage is not None:
            self._usage = usage
        choices = chunk.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, dict):
            return b""
        out = b""
        delta = as_object(choice.get("delta"))
        text = self._text_of(delta)
        if isinstance(text, str) and text:
            out += self._text(text)
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            if isinstance(call, dict):
                out += self._tool(ToolCallDelta.of(call))
        if out:
            self._chunks += 1
        if choice.get("finish_reason"):
            self._finish_reason = choice["finish_reason"]
            self._matched = choice.get("stop_reason")
        return out
