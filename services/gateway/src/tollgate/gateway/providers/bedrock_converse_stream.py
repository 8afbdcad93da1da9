"""Bedrock's ConverseStream (AWS's binary event stream, decoded by botocore's EventStreamBuffer) →
OpenAI chat chunks (`ConverseChatStream`, `StreamTranslator`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from botocore.eventstream import EventStreamBuffer

from tollgate.gateway.providers.base import UpstreamStream
from tollgate.gateway.providers.bedrock_converse_answer import completion_id, finish_reason, openai_usage
from tollgate.gateway.providers.bedrock_converse_errors import openai_error
from tollgate.gateway.providers.openai_chat import DONE, ChunkWriter, as_object, sse_data


class StreamTranslator(ChunkWriter):
    """Converse's events (messageStart, contentBlockStart/Delta/Stop, messageStop, metadata, and
    exceptions) in, OpenAI chat chunks out; pure, one per stream."""

    def __init__(self) -> None:
        super().__init__(completion_id(), None)  # Converse names neither
        self.done = False

    def feed(self, event_type: str, event: dict[str, Any]) -> list[dict[str, Any]]:
        if event_type == "messageStart":
            return [self._chunk({"role": "assistant", "content": ""})]
        if event_type == "contentBlockStart":
            start = as_object(as_object(event.get("start")).get("toolUse"))
            index = event.get("contentBlockIndex")
            if start and isinstance(index, int):
                return self.tool_call_started(index, start.get("toolUseId"), start.get("name"))
            return []
        if event_type == "contentBlockDelta":
            delta = as_object(event.get("delta"))
            index = event.get("contentBlockIndex")
            if isinstance(delta.get("text"), str) and delta["text"]:
                return [self._chunk({"content": delta["text"]})]
            tool = as_object(delta.get("toolUse"))
            if tool.get("input") and self.started(index):
                return self.tool_call_arguments(index, tool["input"])
            text = as_object(delta.get("reasoningContent")).get("text")
            if isinstance(text, str) and text:
                return [self._chunk({"reasoning_content": text})]
            return []
        if event_type == "messageStop":
            return [self._chunk({}, self.finish(finish_reason(event.get("stopReason")) or "stop"))]
        if event_type == "metadata":
            self.done = True
            usage = openai_usage(event.get("usage"))
            return [] if usage is None else [self._frame(choices=[], usage=usage)]
        return []  # contentBlockStop and event types added later


class ConverseChatStream:
    """The upstream's event stream, read as OpenAI chat chunks (`data: {...}` … `data: [DONE]`).
    An exception event mid-stream becomes one OpenAI error object and ends the stream."""

    def __init__(self, upstream: UpstreamStream) -> None:
        self._upstream = upstream
        self.translator = StreamTranslator()

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        buffer = EventStreamBuffer()
        finished = False
        async for raw in self._upstream.aiter_bytes():
            buffer.add_data(raw)
            out = b""
            for message in buffer:
                headers = message.headers
                try:
                    payload = orjson.loads(message.payload) if message.payload else {}
                except orjson.JSONDecodeError:
                    payload = {}
                if headers.get(":message-type") == "exception":
                    error = openai_error(500, message.payload, headers.get(":exception-type"))
                    out += sse_data([error])
                    finished = True
                    break
                chunks = self.translator.feed(str(headers.get(":event-type", "")), as_object(payload))
                out += sse_data(chunks)
            if out:
                yield out
            if finished:
                return
        if self.translator.done:
            yield DONE

    async def aclose(self) -> None:
        await self._upstream.aclose()
