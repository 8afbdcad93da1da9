"""An upstream's OpenAI chat chunks, re-framed as Anthropic's Messages stream:

    message_start, ping,
    (content_block_start, content_block_delta (text_delta | input_json_delta)..., content_block_stop)...,
    message_delta (stop_reason, stop_sequence, usage), message_stop

each as `event: <type>` + `data: <json>`. Reading the chunks and accounting (settle exactly once
however the stream ends) are sse.chunk_relay's; an upstream failure is sent as Anthropic's `error`
event, without message_stop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from tollgate.gateway.anthropic_door.answer import tool_use_id
from tollgate.gateway.anthropic_door.translate import anthropic_usage, stop_reason
from tollgate.gateway.completions.streaming import StreamOutcome
from tollgate.gateway.pipeline import Result
from tollgate.gateway.providers.base import UpstreamStream
from tollgate.gateway.sse.chunk_relay import FAILURES, ChunkRelay, ToolCallDelta


def sse(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"


class MessagesStreamRelay(ChunkRelay):
    def __init__(
        self,
        upstream: UpstreamStream,  # OpenAI chunks: the response, or its provider's translation
        shell: dict[str, Any],
        stop_sequences: list[str],
        settle: Callable[[StreamOutcome], Result],
    ) -> None:
        """`shell`: the message that `message_start` carries (answer.message_shell)."""
        super().__init__(upstream, shell, settle)
        self._stop_sequences = stop_sequences
        self._tool_calls = False
        self._index = -1  # the current content block's index
        self._open: tuple[str, int] | None = None  # ("text", 0) or ("tool", the call's index)

    def _opening(self) -> bytes:
        return sse("message_start", {"message": self._shell}) + sse("ping", {})

    def _failed(self, result: Result) -> bytes:
        return sse("error", {"error": {"type": "api_error", "message": FAILURES[self._status]}})

    def _ending(self, result: Result) -> bytes:
        reason, sequence = stop_reason(
            self._finish_reason, self._matched, self._tool_calls, self._stop_sequences
        )
        delta = {"stop_reason": reason, "stop_sequence": sequence}
        return sse("message_delta", {"delta": delta, "usage": anthropic_usage(result.usage)}) + sse(
            "message_stop", {}
        )

    def _start_block(self, key: tuple[str, int], block: dict[str, Any]) -> bytes:
        out = self._close_open()
        self._index += 1
        self._open = key
        return out + sse("content_block_start", {"index": self._index, "content_block": block})

    def _close_open(self) -> bytes:
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

    def _tool(self, call: ToolCallDelta) -> bytes:
        """A tool call's deltas become one tool_use block, its arguments `input_json_delta`s."""
        out = b""
        if self._open != ("tool", call.position):
            self._tool_calls = True
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": call.call_id or tool_use_id(),
                "name": call.name or "",
                "input": {},
            }
            out = self._start_block(("tool", call.position), block)
        if call.arguments:
            delta = {"type": "input_json_delta", "partial_json": call.arguments}
            out += sse("content_block_delta", {"index": self._index, "delta": delta})
        return out
