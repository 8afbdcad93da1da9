"""Anthropic's Messages stream → OpenAI chat chunks (`AnthropicChatStream`, `StreamTranslator`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from tollgate.gateway.providers.anthropic_answer import finish_reason, openai_usage
from tollgate.gateway.providers.anthropic_errors import openai_error
from tollgate.gateway.providers.base import UpstreamStream
from tollgate.gateway.providers.openai_chat import DONE, ChunkWriter, as_object, sse_data
from tollgate.gateway.sse.events import EventSplitter, event_data


class StreamTranslator(ChunkWriter):
    """Anthropic's event sequence (message_start, content_block_start/delta/stop, message_delta,
    message_stop, ping, error) in, OpenAI chat chunks out; pure, one per stream."""

    def __init__(self) -> None:
        super().__init__("", "")  # both come with message_start
        self.usage: dict[str, Any] = {}

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind = event.get("type")
        if kind == "message_start":
            message = as_object(event.get("message"))
            self.id = message.get("id") or self.id
            self.model = message.get("model") or self.model
            self._merge_usage(message.get("usage"))
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            return self._block_start(event.get("index"), event.get("content_block"))
        if kind == "content_block_delta":
            return self._block_delta(event.get("index"), event.get("delta"))
        if kind == "message_delta":
            delta = as_object(event.get("delta"))
            self._merge_usage(event.get("usage"))
            reason = finish_reason(delta.get("stop_reason"))
            return [self._chunk({}, self.finish(reason or "stop"))]
        if kind == "message_stop":
            usage = openai_usage(self.usage)
            return [] if usage is None else [self._frame(choices=[], usage=usage)]
        if kind == "error":
            error = as_object(event.get("error"))
            body = orjson.dumps({"error": error})
            return [openai_error(529 if error.get("type") == "overloaded_error" else 500, body)]
        return []  # ping, content_block_stop and event types added later

    def _merge_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self.usage.update({k: v for k, v in usage.items() if isinstance(v, int)})

    def _block_start(self, index: Any, block: Any) -> list[dict[str, Any]]:
        if not isinstance(block, dict):
            return []
        kind = block.get("type")
        if kind == "tool_use" and isinstance(index, int):
            return self.tool_call_started(index, block.get("id"), block.get("name"))
        if kind == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        if kind == "thinking" and block.get("thinking"):
            return [self._chunk({"reasoning_content": block["thinking"]})]
        return []

    def _block_delta(self, index: Any, delta: Any) -> list[dict[str, Any]]:
        if not isinstance(delta, dict):
            return []
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if kind == "input_json_delta" and delta.get("partial_json") and self.started(index):
            return self.tool_call_arguments(index, delta["partial_json"])
        if kind == "thinking_delta" and delta.get("thinking"):
            return [self._chunk({"reasoning_content": delta["thinking"]})]
        return []  # signature_delta, citations_delta


def _event_object(event: bytes) -> dict[str, Any] | None:
    """The JSON object of one server-sent event (Anthropic names its type in the data too)."""
    data = event_data(event)
    if not data:
        return None
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


class AnthropicChatStream:
    """The upstream's Messages stream, read as OpenAI chat chunks (`data: {...}` … `data: [DONE]`);
    the gateway's relay then treats it as any OpenAI-compatible stream. Transport errors pass
    through, so a stream cut mid-way is billed by the relay's one rule."""

    def __init__(self, upstream: UpstreamStream) -> None:
        self._upstream = upstream
        self.translator = StreamTranslator()

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        splitter = EventSplitter()
        async for raw in self._upstream.aiter_bytes():
            for event in splitter.feed(raw):
                out = self._translate(event)
                if out:
                    yield out
        if splitter.rest.strip():
            out = self._translate(splitter.rest.strip(b"\n"))
            if out:
                yield out

    def _translate(self, event: bytes) -> bytes:
        data = _event_object(event)
        if data is None:
            return b""
        out = sse_data(self.translator.feed(data))
        if data.get("type") == "message_stop":
            out += DONE
        return out

    async def aclose(self) -> None:
        await self._upstream.aclose()
