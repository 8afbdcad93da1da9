"""OpenAI's chat shapes as the content-block dialects' translators fill them (Anthropic's Messages
API, Bedrock's Converse API): a chat completion, its usage and tool calls, the stream's chunks, the
error envelope. What a dialect calls its blocks, reasons and token counts stays in its own modules;
what the gateway's relay, metering and pricing read is built here, once.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import orjson

from tollgate.gateway.providers.content_blocks import JSON_TOOL

DONE = b"data: [DONE]\n\n"


def as_object(value: Any) -> dict[str, Any]:
    """An upstream's JSON object, or an empty one where it sent something else."""
    return value if isinstance(value, dict) else {}


def token_count(value: Any) -> int:
    """A token count an upstream reported; anything but a non-negative integer counts 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


class UsageNames(NamedTuple):
    """Where a dialect's usage keeps its counts. Its input count excludes the cache reads and
    writes; OpenAI's prompt_tokens include them (completions.tokens.reported_usage)."""

    input: str
    output: str
    cache_read: str
    cache_write: str


def openai_usage(usage: Any, names: UsageNames) -> dict[str, Any] | None:
    """A dialect's usage in OpenAI's shape, the cache reads and writes kept (prompt_tokens_details,
    and Anthropic's top-level names) so pricing sees them; None where it reports no output count."""
    if not isinstance(usage, dict) or names.output not in usage:
        return None
    read = token_count(usage.get(names.cache_read))
    written = token_count(usage.get(names.cache_write))
    prompt = token_count(usage.get(names.input)) + read + written
    completion = token_count(usage.get(names.output))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": read, "cache_write_tokens": written},
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": written,
    }


def tool_call(call_id: Any, name: Any, tool_input: Any) -> dict[str, Any]:
    """A tool use block's call as OpenAI writes it: the input as a JSON string of arguments."""
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": orjson.dumps(tool_input or {}).decode()},
    }


def chat_completion(
    answer_id: Any,
    model: Any,
    texts: list[str],
    reasoning: list[str],
    calls: list[dict[str, Any]],
    finish_reason: str,
    usage: dict[str, Any] | None,
) -> dict[str, Any]:
    """One choice from an answer's blocks: its texts, reasoning and tool calls, each in order. A call
    of the response-format tool (content_blocks.JSON_TOOL) is the answer's content, as OpenAI gives
    structured output."""
    if any(call["function"]["name"] == JSON_TOOL for call in calls):
        texts = [*texts, *(c["function"]["arguments"] for c in calls if c["function"]["name"] == JSON_TOOL)]
        calls = [call for call in calls if call["function"]["name"] != JSON_TOOL]
        if not calls and finish_reason == "tool_calls":
            finish_reason = "stop"
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        reply["tool_calls"] = calls
    if reasoning:
        reply["reasoning_content"] = "".join(reasoning)
    answer: dict[str, Any] = {
        "id": answer_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": reply, "finish_reason": finish_reason, "logprobs": None}],
    }
    if usage is not None:
        answer["usage"] = usage
    return answer


def error_envelope(message: str, error_type: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


def sse_data(chunks: list[dict[str, Any]]) -> bytes:
    """Chunks as the server-sent events an OpenAI-compatible stream sends (`data: {...}`)."""
    return b"".join(b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks)


class ChunkWriter:
    """Writes one stream's OpenAI chat chunks; a dialect's stream translator extends it with the
    reading of its own events. Tool calls are numbered in the order their blocks start."""

    def __init__(self, chunk_id: str, model: str | None) -> None:
        self.id = chunk_id
        self.model = model
        self.created = int(time.time())
        self._tools: dict[int, int] = {}  # content block index → tool call index
        self._json_blocks: set[int] = set()  # blocks of the response-format tool: streamed as content

    def started(self, block: Any) -> bool:
        """Whether `block` started a tool call (its argument deltas are relayed)."""
        return block in self._tools or block in self._json_blocks

    def finish(self, reason: str) -> str:
        """A stream that called only the response-format tool finished its answer, not a tool call."""
        return "stop" if reason == "tool_calls" and self._json_blocks and not self._tools else reason

    def tool_call_started(self, block: int, call_id: Any, name: Any) -> list[dict[str, Any]]:
        if name == JSON_TOOL:
            self._json_blocks.add(block)
            return []
        position = self._tools[block] = len(self._tools)
        call = {
            "index": position,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        return [self._chunk({"tool_calls": [call]})]

    def tool_call_arguments(self, block: int, arguments: str) -> list[dict[str, Any]]:
        """A piece of a started call's JSON arguments (the caller checks the block started one)."""
        if block in self._json_blocks:
            return [self._chunk({"content": arguments})]
        call = {"index": self._tools[block], "function": {"arguments": arguments}}
        return [self._chunk({"tool_calls": [call]})]

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return self._frame(choices=[{"index": 0, "delta": delta, "finish_reason": finish}])

    def _frame(self, **fields: Any) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            **fields,
        }
