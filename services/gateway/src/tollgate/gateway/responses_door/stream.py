"""An upstream's OpenAI chat chunks, re-framed as the Responses API's stream:

    response.created, response.in_progress,
    per output item: response.output_item.added, then
      a message: response.content_part.added, response.output_text.delta..., response.output_text.done,
                 response.content_part.done
      a function call: response.function_call_arguments.delta..., response.function_call_arguments.done
    response.output_item.done; last response.completed | response.incomplete (the whole response,
    with the usage billed) or, when the upstream fails, response.failed

each as `event: <type>` + `data: <json>` with a `sequence_number`. Reading the chunks and
accounting (settle exactly once however the stream ends) are sse.chunk_relay's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from tollgate.gateway.completions.streaming import StreamOutcome
from tollgate.gateway.operations.service import Result
from tollgate.gateway.providers.base import UpstreamStream
from tollgate.gateway.responses_door.answer import (
    INCOMPLETE_REASONS,
    call_id,
    finished,
    function_call_item,
    function_item_id,
    message_item,
    message_item_id,
    responses_usage,
)
from tollgate.gateway.sse.chunk_relay import FAILURES, ChunkRelay, ToolCallDelta


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


class ResponsesStreamRelay(ChunkRelay):
    def __init__(
        self,
        upstream: UpstreamStream,  # OpenAI chunks: the response, or its provider's translation
        shell: dict[str, Any],
        request_id: str,
        settle: Callable[[StreamOutcome], Result],
    ) -> None:
        """`shell`: the response that `response.created` carries (answer.response_shell)."""
        super().__init__(upstream, shell, settle)
        self._request_id = request_id
        self._sequence = 0
        self._output: list[dict[str, Any]] = []  # the items done, in output_index order
        self._open: OpenItem | None = None
        self._messages = 0  # message items started: each gets its own id

    def _opening(self) -> bytes:
        return self._sse("response.created", {"response": self._shell}) + self._sse(
            "response.in_progress", {"response": self._shell}
        )

    def _ending(self, result: Result) -> bytes:
        body = finished(self._shell, self._output, self._finish_reason, result.usage)
        kind = "response.completed" if body["status"] == "completed" else "response.incomplete"
        return self._sse(kind, {"response": body})

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

    def _text_of(self, delta: dict[str, Any]) -> Any:
        return delta.get("content") or delta.get("refusal")

    def _where(self) -> dict[str, Any]:
        assert self._open is not None
        return {"item_id": self._open.id, "output_index": len(self._output)}

    def _start_item(self, key: tuple[str, int], item: dict[str, Any]) -> bytes:
        out = self._close_open()
        self._open = OpenItem(key, item)
        return out + self._sse(
            "response.output_item.added", {"output_index": len(self._output), "item": item}
        )

    def _close_open(self) -> bytes:
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

    def _tool(self, call: ToolCallDelta) -> bytes:
        """A tool call's deltas become one function_call item, its arguments argument deltas."""
        out = b""
        if self._open is None or self._open.key != ("tool", call.position):
            item = function_call_item(
                function_item_id(), call.call_id or call_id(), call.name or "", "", "in_progress"
            )
            out = self._start_item(("tool", call.position), item)
        assert self._open is not None
        if call.arguments:
            self._open.pieces.append(call.arguments)
            out += self._sse(
                "response.function_call_arguments.delta", {**self._where(), "delta": call.arguments}
            )
        return out
