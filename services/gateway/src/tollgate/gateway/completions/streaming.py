"""Server-sent events relay: passes the upstream's chunks through as they come, while it keeps
the usage the upstream reported (or counts content chunks when it reports none) and hides the
usage chunk from clients that did not ask for it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import orjson
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from tollgate.gateway.completions.tokens import reported_usage
from tollgate.gateway.pricing.cost import Usage
from tollgate.gateway.providers.base import UpstreamStream

DONE = b"data: [DONE]\n\n"


@dataclass(slots=True)
class StreamOutcome:
    status: str  # "ok" | "client_disconnected" | "upstream_error" | "upstream_timeout"
    usage: Usage | None  # as the upstream reported it (None: it reported nothing usable)
    content_chunks: int
    text: str = ""  # the assembled answer, when the relay was asked to collect it (chat records)


def _error_event(message: str, code: str) -> bytes:
    body = {"error": {"message": message, "type": "api_error", "code": code, "param": None}}
    return b"data: " + orjson.dumps(body) + b"\n\n"


class SseRelay:
    def __init__(
        self,
        upstream: UpstreamStream,  # OpenAI chunks: the response, or its provider's translation of it
        public_model: str,
        client_wants_usage: bool,
        estimate_prompt: Callable[[], int],
        on_finish: Callable[[StreamOutcome], Awaitable[None] | None],
        collect: bool = False,
    ) -> None:
        """`on_finish` accounts the stream, once, however it ended; what it returns (the hold's
        mark being sent) is awaited before a completed stream's last event."""
        self._upstream = upstream
        self._model = public_model
        self._wants_usage = client_wants_usage
        self._estimate_prompt = estimate_prompt
        self._on_finish = on_finish
        self._usage: Usage | None = None
        self._content_chunks = 0
        self._last: dict[str, Any] = {}
        self._status = "client_disconnected"  # until the stream completes or fails otherwise
        self._finished = False
        # chat records: the first choice's content deltas, joined when the stream ends
        self._parts: list[str] | None = [] if collect else None

    async def events(self) -> AsyncIterator[bytes]:
        buffer = b""
        try:
            try:
                async for raw in self._upstream.aiter_bytes():
                    buffer += raw
                    if b"\r" in buffer:  # sse-starlette (llama-cpp's server) ends lines with CRLF
                        buffer = buffer.replace(b"\r\n", b"\n")
                    while (cut := buffer.find(b"\n\n")) >= 0:
                        out = self._relay_event(buffer[:cut])
                        buffer = buffer[cut + 2 :]
                        if out:
                            yield out
            except httpx.TimeoutException:
                self._status = "upstream_timeout"
                yield _error_event("The upstream stopped responding.", "upstream_timeout")
                return
            except httpx.TransportError:
                self._status = "upstream_error"
                yield _error_event("The upstream connection failed mid-stream.", "upstream_error")
                return
            if buffer.strip():
                out = self._relay_event(buffer.strip(b"\n"))
                if out:
                    yield out
            tail = b""
            if self._usage is None and self._wants_usage:
                tail = self._usage_chunk(self._estimated_usage())
            self._status = "ok"
            marked = self.finish()
            if marked is not None:
                await marked  # the hold's mark leaves before the stream's last event
            yield tail + DONE
        finally:
            self.finish()

    def finish(self) -> Awaitable[None] | None:
        """Accounting, exactly once, synchronously: it also runs while the task is being cancelled
        (a client that went away: the upstream call is closed here, which stops the generation)."""
        if self._finished:
            return None
        self._finished = True
        text = "".join(self._parts) if self._parts is not None else ""
        marked = self._on_finish(StreamOutcome(self._status, self._usage, self._content_chunks, text))
        # Closing the upstream connection may await; never inside a cancelled scope, so in a task.
        asyncio.get_running_loop().create_task(self._upstream.aclose())
        return marked

    def _estimated_usage(self) -> Usage:
        return Usage(self._estimate_prompt(), self._content_chunks)

    def _usage_chunk(self, usage: Usage) -> bytes:
        chunk = {
            "id": self._last.get("id", ""),
            "object": self._last.get("object", "chat.completion.chunk"),
            "created": self._last.get("created", int(time.time())),
            "model": self._model,
            "choices": [],
            "usage": {
                "prompt_tokens": usage.tokens_in,
                "completion_tokens": usage.tokens_out,
                "total_tokens": usage.tokens_in + usage.tokens_out,
            },
        }
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def _relay_event(self, event: bytes) -> bytes | None:
        data_lines = [line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:")]
        if not data_lines:
            return event + b"\n\n" if event.strip() else None  # comments / keep-alives pass through
        data = b"\n".join(data_lines)
        if data == b"[DONE]":
            return None  # sent by us at the very end, after a synthesized usage chunk if any
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return event + b"\n\n"
        if not isinstance(obj, dict):
            return event + b"\n\n"
        if "error" in obj:
            self._status = "upstream_error"
            return b"data: " + data + b"\n\n"
        choices = obj.get("choices")
        if self._parts is not None and choices and isinstance(choices[0], dict):
            delta = choices[0].get("delta")
            if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                self._parts.append(delta["content"])
        if choices:
            for choice in choices:
                if not isinstance(choice, dict):
                    continue
                delta = choice.get("delta")
                if choice.get("text") or (  # text completions stream "text", chat streams "delta"
                    isinstance(delta, dict) and (delta.get("content") or delta.get("tool_calls"))
                ):
                    self._content_chunks += 1
                    break
        usage = reported_usage(obj.get("usage"))
        if usage is not None:
            self._usage = usage
        if not self._wants_usage:
            if usage is not None and not choices:
                return None  # the usage-only chunk we asked for on the client's behalf
            obj.pop("usage", None)
        if "model" in obj:
            obj["model"] = self._model
        self._last = obj
        return b"data: " + orjson.dumps(obj) + b"\n\n"


class Relay(Protocol):
    def events(self) -> AsyncIterator[bytes]: ...
    def finish(self) -> object: ...


class RelayResponse(StreamingResponse):
    """A StreamingResponse that settles the relay however the response ends (even if the body
    iterator is abandoned without being closed when the client goes away)."""

    def __init__(self, relay: Relay) -> None:
        super().__init__(
            relay.events(),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )
        self._relay = relay

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._relay.finish()
