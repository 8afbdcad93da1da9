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
whose input fills the schema's required properties. What it shares with converse.py is in
block_dialects.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tollgate.upstream_sim import block_dialects as dialects
from tollgate.upstream_sim.app import SimStats, delay_for, json_response
from tollgate.upstream_sim.block_dialects import DOCUMENT_TOKENS, IMAGE_TOKENS, as_object, words
from tollgate.upstream_sim.rich import last_user_text

CUED_ERRORS = (  # model-name cue → (status, Anthropic error type)
    ("overloaded", 529, "overloaded_error"),
    ("ratelimited", 429, "rate_limit_error"),
    ("error", 500, "api_error"),
)


def anthropic_error(message: str, status_code: int, error_type: str) -> Response:
    return json_response({"type": "error", "error": {"type": error_type, "message": message}}, status_code)


def _block_tokens(blocks: Any) -> int | None:
    """Tokens of a content value (a string or blocks); None when a block is malformed."""
    if isinstance(blocks, str):
        return words(blocks)
    if not isinstance(blocks, list):
        return None
    tokens = 0
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            tokens += words(block.get("text"))
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
            tokens += dialects.tool_use_tokens(block.get("input"))
        else:
            return None
    return tokens


def prompt_tokens(body: dict[str, Any]) -> int | None:
    system = body.get("system")
    system_tokens = 0 if system is None else _block_tokens(system)
    return dialects.conversation_tokens(system_tokens, body["messages"], _block_tokens)


def usage_of(model: str, prompt: int, output: int) -> dict[str, Any]:
    read, written = dialects.cache_split(model, prompt)
    return {
        "input_tokens": prompt - read - written,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": read,
        "output_tokens": output,
    }


def tool_to_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """The tool the answer uses, if any: forced by tool_choice, or named in the last user turn."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and isinstance(t.get("name"), str)]
    choice = as_object(body.get("tool_choice"))
    if choice.get("type") == "none":
        return None
    text = last_user_text(body["messages"])
    return dialects.tool_to_call(tools, choice.get("type"), choice.get("name"), text)


def tool_input(tool: dict[str, Any]) -> dict[str, Any]:
    return dialects.sample_input(as_object(tool.get("input_schema")))


def _validate(request: Request, body: Any) -> Response | None:
    if not request.headers.get("x-api-key"):
        return anthropic_error("x-api-key header is required", 401, "authentication_error")
    if not request.headers.get("anthropic-version"):
        return anthropic_error("anthropic-version: header is required", 400, "invalid_request_error")
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return anthropic_error("model: Field required", 400, "invalid_request_error")
    if not dialects.positive_int(body.get("max_tokens")):
        return anthropic_error("max_tokens: Field required", 400, "invalid_request_error")
    problem = dialects.messages_problem(body.get("messages"))
    if problem is not None:
        return anthropic_error(problem, 400, "invalid_request_error")
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
    cued = dialects.cued_error(model, CUED_ERRORS)
    if cued is not None:
        return anthropic_error(f"The simulated upstream answered {cued[0]}.", *cued)
    prompt = prompt_tokens(body)
    if prompt is None:
        return anthropic_error("messages: a content block is malformed", 400, "invalid_request_error")
    answer = dialects.sim_answer(model, body["max_tokens"], tool_to_call(body), prompt, usage_of)
    _, n, tool, stop_reason, usage = answer
    message_id = f"msg_{uuid.uuid4().hex[:24]}"
    if body.get("stream"):
        delay = dialects.stream_delay(request, model)
        events = _stream(message_id, answer, delay, stats, request.headers)
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
    message_id: str, answer: dialects.SimAnswer, delay: float, stats: SimStats, headers: Any
) -> AsyncIterator[bytes]:
    model, n, tool, stop_reason, usage = answer
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
            # the real API opens with an empty piece
            pieces = ["", *dialects.argument_halves(tool_input(tool))]
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
        dialects.count_abort(stats, model, headers, sent, n)
        raise
    stats.streams_completed += 1
