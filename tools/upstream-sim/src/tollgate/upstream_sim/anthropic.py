"""The simulator's Anthropic dialect: `POST /v1/messages` (Messages API), streamed and not.

Deterministic like the OpenAI dialect: prompt tokens are the whitespace-separated words of the
system prompt and of every text and tool_result block, plus IMAGE_TOKENS per image block and
DOCUMENT_TOKENS per document block; an answer has min(max_tokens, 16) tokens ("-long" models: up
to max_tokens). Like the real API it needs the `x-api-key` (401 without) and `anthropic-version`
(400 without) headers and `max_tokens`, and its errors are `{"type": "error", "error": {"type", "message"}}`.

Cues, as in the OpenAI dialect: the model name ("error" answers 500, "overloaded" 529,
"ratelimited" 429, "streamfail" streams two text deltas then an `error` event (overloaded_error),
"slow"/"timeout" wait, "drip" streams slowly, "cachedetail" reads half the
prompt from the cache, "cachewrite" reads a quarter and writes half; Anthropic's input_tokens is
what is left), and the prompt: when tools are given and the last user turn names one of them (or
tool_choice is "any" or a tool), the answer is a tool_use of that tool (stop_reason "tool_use")
whose input fills the schema's required properties.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tollgate.upstream_sim.app import (
    DRIP_CHUNK_DELAY_S,
    SimStats,
    chunk_delay_of,
    completion_token_count,
    delay_for,
    json_response,
)

IMAGE_TOKENS = 8
DOCUMENT_TOKENS = 32  # per document block, whatever its size
CUED_ERRORS = (  # model-name cue → (status, Anthropic error type)
    ("overloaded", 529, "overloaded_error"),
    ("ratelimited", 429, "rate_limit_error"),
    ("error", 500, "api_error"),
)
SAMPLE_VALUES = {"string": "sim", "integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}


def anthropic_error(message: str, status_code: int, error_type: str) -> Response:
    return json_response({"type": "error", "error": {"type": error_type, "message": message}}, status_code)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _words(text: Any) -> int:
    return len(text.split()) if isinstance(text, str) else 0


def _block_tokens(blocks: Any) -> int | None:
    """Tokens of a content value (a string or blocks); None when a block is malformed."""
    if isinstance(blocks, str):
        return _words(blocks)
    if not isinstance(blocks, list):
        return None
    tokens = 0
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            tokens += _words(block.get("text"))
        elif kind == "image":
            source = block.get("source")
            if not isinstance(source, dict) or not (
                (source.get("type") == "base64" and source.get("media_type") and source.get("data"))
                or (source.get("type") == "url" and source.get("url"))
            ):
                return None
            tokens += IMAGE_TOKENS
        elif kind == "tool_result":
            inner = _block_tokens(block.get("content", ""))
            if inner is None:
                return None
            tokens += inner
        elif kind == "document":
            source = block.get("source")
            if not isinstance(source, dict) or source.get("type") not in ("base64", "text", "url"):
                return None
            tokens += DOCUMENT_TOKENS
        elif kind == "tool_use":
            tokens += len(orjson.dumps(block.get("input") or {})) // 4
        else:
            return None
    return tokens


def prompt_tokens(body: dict[str, Any]) -> int | None:
    system = body.get("system")
    total = 0 if system is None else _block_tokens(system)
    if total is None:
        return None
    for message in body["messages"]:
        tokens = _block_tokens(message.get("content")) if isinstance(message, dict) else None
        if tokens is None:
            return None
        total += tokens
    return total


def usage_of(model: str, prompt: int, output: int) -> dict[str, Any]:
    read = written = 0
    if "cachedetail" in model:
        read = prompt // 2
    if "cachewrite" in model:
        read, written = prompt // 4, prompt // 2
    return {
        "input_tokens": prompt - read - written,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": read,
        "output_tokens": output,
    }


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(
                    b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"
                )
            return ""
    return ""


def tool_to_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """The tool the answer uses, if any: forced by tool_choice, or named in the last user turn."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and isinstance(t.get("name"), str)]
    choice = _dict(body.get("tool_choice"))
    if not tools or choice.get("type") == "none":
        return None
    if choice.get("type") == "tool":
        return next((t for t in tools if t["name"] == choice.get("name")), None)
    if choice.get("type") == "any":
        return tools[0]
    text = _last_user_text(body["messages"])
    return next((t for t in tools if t["name"] in text), None)


def tool_input(tool: dict[str, Any]) -> dict[str, Any]:
    schema = _dict(tool.get("input_schema"))
    properties = _dict(schema.get("properties"))
    required = schema.get("required")
    required = required if isinstance(required, list) else []
    out: dict[str, Any] = {}
    for name in required:
        spec = _dict(properties.get(name))
        out[name] = SAMPLE_VALUES.get(spec.get("type", "string"), "sim")
    return out


def _validate(request: Request, body: Any) -> Response | None:
    if not request.headers.get("x-api-key"):
        return anthropic_error("x-api-key header is required", 401, "authentication_error")
    if not request.headers.get("anthropic-version"):
        return anthropic_error("anthropic-version: header is required", 400, "invalid_request_error")
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return anthropic_error("model: Field required", 400, "invalid_request_error")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        return anthropic_error("max_tokens: Field required", 400, "invalid_request_error")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return anthropic_error("messages: at least one message is required", 400, "invalid_request_error")
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            return anthropic_error(
                "messages: roles must be 'user' or 'assistant'", 400, "invalid_request_error"
            )
    return None


async def messages(request: Request) -> Response:
    stats: SimStats = request.app.state.stats
    stats.messages += 1
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return anthropic_error("The request body is not valid JSON.", 400, "invalid_request_error")
    refused = _validate(request, body)
    if refused is not None:
        return refused
    model: str = body["model"]
    stats.count(model)
    await delay_for(model, request)
    for cue, status, error_type in CUED_ERRORS:
        if cue in model:
            return anthropic_error(f"The simulated upstream answered {status}.", status, error_type)
    prompt = prompt_tokens(body)
    if prompt is None:
        return anthropic_error("messages: a content block is malformed", 400, "invalid_request_error")
    max_tokens: int = body["max_tokens"]
    n = completion_token_count(model, max_tokens)
    tool = tool_to_call(body)
    stop_reason = "tool_use" if tool is not None else "max_tokens" if n >= max_tokens else "end_turn"
    usage = usage_of(model, prompt, n)
    message_id = f"msg_{uuid.uuid4().hex[:24]}"
    if body.get("stream"):
        delay = chunk_delay_of(request) or (DRIP_CHUNK_DELAY_S if "drip" in model else 0.0)
        events = _stream(message_id, model, n, tool, stop_reason, usage, delay, stats, request.headers)
        return StreamingResponse(
            events, media_type="text/event-stream", headers={"cache-control": "no-cache"}
        )
    if tool is not None:
        content = [
            {
                "type": "tool_use",
                "id": f"toolu_{uuid.uuid4().hex[:24]}",
                "name": tool["name"],
                "input": tool_input(tool),
            }
        ]
    else:
        content = [{"type": "text", "text": " ".join(f"tok{i}" for i in range(n))}]
    return json_response(
        {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }
    )


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps({"type": name, **data}) + b"\n\n"


async def _stream(
    message_id: str,
    model: str,
    n: int,
    tool: dict[str, Any] | None,
    stop_reason: str,
    usage: dict[str, Any],
    delay: float,
    stats: SimStats,
    headers: Any,
) -> AsyncIterator[bytes]:
    start: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 1},
    }
    sent = 0
    try:
        yield _event("message_start", {"message": start})
        if tool is not None:
            block = {
                "type": "tool_use",
                "id": f"toolu_{uuid.uuid4().hex[:24]}",
                "name": tool["name"],
                "input": {},
            }
            arguments = orjson.dumps(tool_input(tool)).decode()
            half = len(arguments) // 2
            pieces = ["", arguments[:half], arguments[half:]]  # the real API opens with an empty piece
            yield _event("content_block_start", {"index": 0, "content_block": block})
            yield _event("ping", {})
            for piece in pieces:
                yield _event(
                    "content_block_delta",
                    {"index": 0, "delta": {"type": "input_json_delta", "partial_json": piece}},
                )
                sent += 1
        else:
            yield _event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
            yield _event("ping", {})
            for i in range(n):
                if "streamfail" in model and i == 2:
                    error = {"type": "overloaded_error", "message": "Overloaded"}
                    yield _event("error", {"error": error})
                    return
                yield _event(
                    "content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": f"tok{i} "}}
                )
                sent += 1
                if delay:
                    await asyncio.sleep(delay)
        yield _event("content_block_stop", {"index": 0})
        yield _event(
            "message_delta",
            {"delta": {"stop_reason": stop_reason, "stop_sequence": None}, "usage": {"output_tokens": n}},
        )
        yield _event("message_stop", {})
    except (asyncio.CancelledError, GeneratorExit):
        tag = headers.get("x-sim-tag", "")
        stats.streams_aborted.append({"model": model, "tag": tag, "chunks_sent": sent, "of": n})
        raise
    stats.streams_completed += 1
