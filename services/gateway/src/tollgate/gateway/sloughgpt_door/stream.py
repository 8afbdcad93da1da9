"""An upstream's OpenAI chat chunks as SloughGPT's generation stream (`stream: true` on /generate):
server-sent events whose data is one JSON object each, read by its SDKs as `chunk.text`:

    data: {"id", "object": "generation.chunk", "model_id", "text": "<piece>", "finish_reason": null}
    ...
    data: {"id", "object": "generation.chunk", "model_id", "text": "", "finish_reason", "usage", "cost"}
    data: [DONE]

An upstream failure ends the stream with `data: {"error": {"code": "INTERNAL_ERROR", ...}}` (the
seed's envelope) and no [DONE]. Reading and accounting are sse.chunk_relay's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from tollgate.common.money import micros_to_credits
from tollgate.gateway.completions.streaming import StreamOutcome
from tollgate.gateway.pipeline import Result
from tollgate.gateway.providers.base import UpstreamStream
from tollgate.gateway.sloughgpt_door.answer import finish_reason, usage_body
from tollgate.gateway.sse.chunk_relay import FAILURES, ChunkRelay, ToolCallDelta


def _event(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


class GenerationStreamRelay(ChunkRelay):
    def __init__(
        self,
        upstream: UpstreamStream,
        shell: dict[str, Any],  # id, object, model_id: what every chunk carries
        settle: Callable[[StreamOutcome], Result],
        request_id: str,
    ) -> None:
        super().__init__(upstream, shell, settle)
        self._request_id = request_id

    def _opening(self) -> bytes:
        return b""  # the first piece of text is the first event

    def _text(self, text: str) -> bytes:
        return _event({**self._shell, "text": text, "finish_reason": None})

    def _tool(self, call: ToolCallDelta) -> bytes:
        return b""  # no tools are offered to the model

    def _close_open(self) -> bytes:
        return b""

    def _ending(self, result: Result) -> bytes:
        last = {
            **self._shell,
            "text": "",
            "finish_reason": finish_reason(self._finish_reason),
            "usage": usage_body(result.usage),
            "cost": micros_to_credits(result.cost_micros),
        }
        return _event(last) + b"data: [DONE]\n\n"

    def _failed(self, result: Result) -> bytes:
        error = {"code": "INTERNAL_ERROR", "message": FAILURES[self._status], "request_id": self._request_id}
        return _event({"error": {**error, "details": {"reason": self._status}}})
