"""An upstream's OpenAI chat chunks, re-framed as the Responses API's stream:

    response.created, response.in_progress,
    per output item: response.output_item.added, then
      a message: response.content_part.added, response.output_text.delta..., response.output_text.done,
                 response.content_part.done
      a function call: response.function_call_arguments.delta..., response.function_call_arguments.done
    response.output_item.done; last response.completed | response.incomplete (the whole response,
    with the usage billed) or, when the upstream fails, response.failed

each as `event: <type>` + `data: <json>` with a `sequence_number`. Accounting follows the other
relays (the Anthropic door's, SseRelay): `settle` runs exactly once however the stream ends, so a
client that goes away is billed for the prompt and the chunks relayed and the upstream call is
closed, and an upstream that fails before its first token charges nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson

from tollgate.gateway.completions.streaming import StreamOutcome
from tollgate.gateway.completions.tokens import reported_usage
from tollgate.gateway.operations.service import Result
from tollgate.gateway.pricing.cost import Usage
from tollgate.gateway.providers.base import UpstreamStream
from tollgate.gateway.responses_door.answer import (
    INCOMPLETE_REASONS,
    as_object,
    call_id,
    finished,
    function_call_item,
    function_item_id,
    message_item,
    message_item_id,
    responses_usage,
)

FAILURES = {
    "upstream_error": "The upstream model's stream failed.",
    "upstream_timeout": "The upstream model stopped responding.",
}


class OpenItem:
    """The output item being streamed: a message's text or a function call's arguments so far."""

    def __init__(self, key: tuple[str, int], item: dict[str, Any]) -> None:
        self.key = key  # ("text", 0) or ("tool", the chat tool call's index)
        self.item = item
        self.pieces: list[str] = []

    @property
    def id(self) -> str:
        return str(self.item["id"])

    def done(self, status: str) -> dict[str, Any]:
        text = "".join(self.pieces)
        if self.key[0] == "text":
            return message_item(self.id, text, status)
        item = self.item
        return function_call_item(self.id, item["call_id"], item["name"], text, status)


class ResponsesStreamRelay:
    def __init__(
        self,
        upstream: UpstreamStream,  # OpenAI chunks: the response, or its provider's translation
        shell: dict[str, Any],
        request_id: str,
        settle: Callable[[StreamOutcome], Result],
    ) -> None:
        """`shell`: the response that `response.created` carries (answer.response_shell)."""
        self._upstream = upstream
        self._shell = shell
        self._request_id = request_id
        self._settle = settle
        self._status = "client_disconnected"  # until the upstream completes or fails
        self._usage: Usage | None = None
        self._chunks = 0  # upstream chunks with content: what a cut stream is billed for
        self._finish_reason: Any = None
        self._sequence = 0
        self._output: list[dict[str, Any]] = []  # the items done, in output_index order
        self._open: OpenItem | None = None
        self._messages = 0  # message items started: each gets its own id
        self._finished = False

    async def events(self) -> AsyncIterator[bytes]:
        buffer = b""
        try:
            yield self._sse("response.created", {"response": self._shell}) + self._sse(
                "response.in_progress", {"response": self._shell}
            )
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
                yield self._failed(self.finish())
                return
            self._status = "ok"
            closing = self._close_item()
            result = self.finish()
            if result.marking is not None:
                await result.marking  # the hold's mark leaves before the stream's last event
            body = finished(self._shell, self._output, self._finish_reason, result.usage)
            kind = "response.completed" if body["status"] == "completed" else "response.incomplete"
            yield closing + self._sse(kind, {"response": body})
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

    def _sse(self, kind: str, data: dict[str, Any]) -> bytes:
        body = orjson.dumps({"type": kind, "sequence_number": self._sequence, **data})
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + body + b"\n\n"

    def _failed(self, result: Result) -> bytes:
        """The items so far (the one cut short as incomplete) and what was billed for them."""
        output = [*self._output, *([self._open.done("incomplete")] if self._open else [])]
        error = {"code": "server_error", "message": FAILURES[self._status]}
        body = {**self._shell, "status": "failed", "error": error, "output": output}
        body["usage"] = responses_usage(result.usage)
        return self._sse("response.failed", {"response": body})

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
        text = delta.get("content") or delta.get("refusal")
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
        return out

    def _where(self) -> dict[str, Any]:
        assert self._open is not None
        return {"item_id": self._open.id, "output_index": len(self._output)}

    def _start_item(self, key: tuple[str, int], item: dict[str, Any]) -> bytes:
        out = self._close_item()
        self._open = OpenItem(key, item)
        return out + self._sse(
            "response.output_item.added", {"output_index": len(self._output), "item": item}
        )

    def _close_item(self) -> bytes:
        if self._open is None:
            return b""
        where, text = self._where(), "".join(self._open.pieces)
        status = "incomplete" if self._finish_reason in INCOMPLETE_REASONS else "completed"
        if self._open.key[0] == "text":
            part = {"type": "output_text", "text": text, "annotations": []}
            out = self._sse(
                "response.output_text.done", {**where, "content_index": 0, "text": text, "logprobs": []}
            )
            out += self._sse("response.content_part.done", {**where, "content_index": 0, "part": part})
        else:
            out = self._sse("response.function_call_arguments.done", {**where, "arguments": text})
            status = "completed"  # a call whose arguments ended is whole, cut or not
        item = self._open.done(status)
        out += self._sse("response.output_item.done", {"output_index": len(self._output), "item": item})
        self._output.append(item)
        self._open = None
        return out

    def _text(self, text: str) -> bytes:
        out = b""
        if self._open is None or self._open.key != ("text", 0):
            item_id = message_item_id(self._request_id, self._messages)
            self._messages += 1
            item = {
                "id": item_id,
                "type": "message",
                "role": "assistant",
                "status": "in_progress",
                "content": [],
            }
            out = self._start_item(("text", 0), item)
            part = {"type": "output_text", "text": "", "annotations": []}
            out += self._sse(
                "response.content_part.added", {**self._where(), "content_index": 0, "part": part}
            )
        assert self._open is not None
        self._open.pieces.append(text)
        delta = {**self._where(), "content_index": 0, "delta": text, "logprobs": []}
        return out + self._sse("response.output_text.delta", delta)

    def _tool(self, call: dict[str, Any]) -> bytes:
        """OpenAI streams a tool call as deltas of one `index`: the first with its id and name, then
        pieces of its JSON arguments, which become one function_call item's argument deltas."""
        index = call.get("index")
        position = index if isinstance(index, int) else 0
        function = as_object(call.get("function"))
        out = b""
        if self._open is None or self._open.key != ("tool", position):
            item = function_call_item(
                function_item_id(), call.get("id") or call_id(), function.get("name") or "", "", "in_progress"
            )
            out = self._start_item(("tool", position), item)
        assert self._open is not None
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            self._open.pieces.append(arguments)
            out += self._sse("response.function_call_arguments.delta", {**self._where(), "delta": arguments})
        return out
