"""An upstream's OpenAI chat chunks, re-framed as Anthropic's Messages stream:

    message_start, ping,
    (content_block_start, content_block_delta (text_delta | input_json_delta)..., content_block_stop)...,
    message_delta (stop_reason, stop_sequence, usage), message_stop

each as `event: <type>` + `data: <json>`. Accounting follows the other relays (SseRelay,
Seed003Relay): `settle` runs exactly once however the stream ends, so a client that goes away is
billed for the prompt and the chunks relayed, and an upstream that fails before its first token
charges nothing. An upstream failure is sent as Anthropic's `error` event, without message_stop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson

from tollgate.gateway.anthropic_door.answer import tool_use_id
from tollgate.gateway.anthropic_door.translate import anthropic_usage, as_object, stop_reason
from tollgate.gateway.completions.streaming import StreamOutcome
from tollgate.gateway.completions.tokens import reported_usage
from tollgate.gateway.operations.service import Result
from tollgate.gateway.pricing.cost import Usage
from tollgate.gateway.providers.base import UpstreamStream

FAILURES = {
    "upstream_error": "The upstream model's stream failed.",
    "upstream_timeout": "The upstream model stopped responding.",
}


def sse(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"


class MessagesStreamRelay:
    def __init__(
        self,
        upstream: UpstreamStream,  # OpenAI chunks: the response, or its provider's translation
        shell: dict[str, Any],
        stop_sequences: list[str],
        settle: Callable[[StreamOutcome], Result],
    ) -> None:
        """`shell`: the message that `message_start` carries (answer.message_shell)."""
        self._upstream = upstream
        self._shell = shell
        self._stop_sequences = stop_sequences
        self._settle = settle
        self._status = "client_disconnected"  # until the upstream completes or fails
        self._usage: Usage | None = None
        self._chunks = 0  # upstream chunks with content: what a cut stream is billed for
        self._finish_reason: Any = None
        self._matched: Any = None  # the stop sequence a server says ended the text (vLLM)
        self._tool_calls = False
        self._index = -1  # the current content block's index
        self._open: tuple[str, int] | None = None  # ("text", 0) or ("tool", the call's index)
        self._finished = False

    async def events(self) -> AsyncIterator[bytes]:
        buffer = b""
        try:
            yield sse("message_start", {"message": self._shell}) + sse("ping", {})
            try:
                async for raw in self._upstream.aiter_bytes():
                    buffer = (buffer + raw).replace(b"\r\n", b"\n")  # sse-starlette ends lines with CRLF
                    while self._status == "client_disconnected" and (cut := buffer.find(b"\n\n")) >= 0:
                        out = self._translate(buffer[:cut])
                        buffer = buffer[cut + 2 :]
                        if out:
                            yield out
                    if self._status != "client_disconnected":
                        break  # the upstream sent an error object
            except httpx.TimeoutException:
                self._status = "upstream_timeout"
            except httpx.HTTPError:
                self._status = "upstream_error"
            if self._status == "client_disconnected" and buffer.strip():
                out = self._translate(buffer.strip())
                if out:
                    yield out
            if self._status in FAILURES:
                self.finish()
                yield sse("error", {"error": {"type": "api_error", "message": FAILURES[self._status]}})
                return
            self._status = "ok"
            closing = self._close_block()
            result = self.finish()
            if result.marking is not None:
                await result.marking  # the hold's mark leaves before the stream's last event
            yield closing + self._message_end(result)
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

    def _message_end(self, result: Result) -> bytes:
        reason, sequence = stop_reason(
            self._finish_reason, self._matched, self._tool_calls, self._stop_sequences
        )
        delta = {"stop_reason": reason, "stop_sequence": sequence}
        return sse("message_delta", {"delta": delta, "usage": anthropic_usage(result.usage)}) + sse(
            "message_stop", {}
        )

    def _translate(self, event: bytes) -> bytes:
        data = b"\n".join(line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:"))
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
        text = delta.get("content")
        if isinstance(text, str) and text:
            out += self._text(text)
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            if isinstance(call, dict):
                out += self._tool(call)
        if out:
            self._chunks += 1
        if choice.get("finish_reason"):
            self._finish_reason = choice["finish_reason"]
            self._matched = choice.get("stop_reason")
        return out

    def _start_block(self, key: tuple[str, int], block: dict[str, Any]) -> bytes:
        out = self._close_block()
        self._index += 1
        self._open = key
        return out + sse("content_block_start", {"index": self._index, "content_block": block})

    def _close_block(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return sse("content_block_stop", {"index": self._index})

    def _text(self, text: str) -> bytes:
        out = b""
        if self._open != ("text", 0):
            out = self._start_block(("text", 0), {"type": "text", "text": ""})
        delta = {"type": "text_delta", "text": text}
        return out + sse("content_block_delta", {"index": self._index, "delta": delta})

    def _tool(self, call: dict[str, Any]) -> bytes:
        """OpenAI streams a tool call as deltas of one `index`: the first with its id and name, then
        pieces of its JSON arguments, which become `input_json_delta`s of one tool_use block."""
        index = call.get("index")
        position = index if isinstance(index, int) else 0
        function = as_object(call.get("function"))
        out = b""
        if self._open != ("tool", position):
            self._tool_calls = True
            block = {
                "type": "tool_use",
                "id": call.get("id") or tool_use_id(),
                "name": function.get("name") or "",
                "input": {},
            }
            out = self._start_block(("tool", position), block)
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            delta = {"type": "input_json_delta", "partial_json": arguments}
            out += sse("content_block_delta", {"index": self._index, "delta": delta})
        return out
