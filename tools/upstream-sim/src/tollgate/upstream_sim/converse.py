"""The simulator's Amazon Bedrock Converse dialect: `POST /model/{modelId}/converse` and
`/model/{modelId}/converse-stream` (AWS's binary event-stream framing, encoded here).

Deterministic like the other dialects: prompt tokens are the whitespace-separated words of the
system blocks and of every text, toolResult and document-name block, plus IMAGE_TOKENS per image
and DOCUMENT_TOKENS per document; an answer has min(maxTokens, 16) tokens ("-long" models: up to
maxTokens). Like the real API it needs a SigV4 `Authorization` header for service `bedrock`
(`AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/bedrock/aws4_request, SignedHeaders=...,
Signature=<hex>`) and answers 403 (UnrecognizedClientException) otherwise; it checks the shape, not
the signature. Errors are `{"message": ...}` with the `x-amzn-ErrorType` header.

Cues, as in the Anthropic dialect: the modelId ("error" answers 500 InternalServerException,
"ratelimited" 429 ThrottlingException, "notready" 429 ModelNotReadyException, "unavailable" 503
ServiceUnavailableException, "badrequest" 400 ValidationException; "slow"/"timeout" wait, "drip"
streams slowly; "cachedetail" reads half the prompt from the cache, "cachewrite" reads a quarter
and writes half; inputTokens is what is left), and the prompt: with toolConfig, a last user turn
naming a tool (or toolChoice any / tool) is answered with a toolUse (stopReason "tool_use").
"""

from __future__ import annotations

import asyncio
import re
import struct
import uuid
import zlib
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
)

IMAGE_TOKENS = 8
DOCUMENT_TOKENS = 32
DEFAULT_MAX_TOKENS = 4096
CUED_ERRORS = (  # modelId cue → (status, error type)
    ("notready", 429, "ModelNotReadyException"),
    ("unavailable", 503, "ServiceUnavailableException"),
    ("ratelimited", 429, "ThrottlingException"),
    ("badrequest", 400, "ValidationException"),
    ("error", 500, "InternalServerException"),
)
SAMPLE_VALUES = {"string": "sim", "integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}
AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=[^/\s]+/\d{8}/(?P<region>[a-z0-9-]+)/bedrock/aws4_request, "
    r"SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$"
)


def bedrock_error(message: str, status_code: int, error_type: str) -> Response:
    return Response(
        orjson.dumps({"message": message}),
        status_code=status_code,
        media_type="application/json",
        headers={"x-amzn-errortype": f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"},
    )


# -- AWS event-stream framing ---------------------------------------------------------------------


def _string_header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return bytes([len(raw_name)]) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (total length, headers length), prelude CRC32, headers,
    payload, message CRC32 (all big-endian)."""
    raw_headers = b"".join(_string_header(k, v) for k, v in headers.items())
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    head = prelude + struct.pack(">I", zlib.crc32(prelude))
    body = head + raw_headers + payload
    return body + struct.pack(">I", zlib.crc32(body))


def event(event_type: str, data: dict[str, Any]) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, orjson.dumps(data))


def exception(error_type: str, message: str) -> bytes:
    headers = {
        ":exception-type": error_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, orjson.dumps({"message": message}))


# -- requests -------------------------------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _words(text: Any) -> int:
    return len(text.split()) if isinstance(text, str) else 0


def _block_tokens(blocks: Any) -> int | None:
    if not isinstance(blocks, list):
        return None
    tokens = 0
    for block in blocks:
        if not isinstance(block, dict):
            return None
        if "text" in block:
            tokens += _words(block["text"])
        elif "image" in block:
            image = _dict(block["image"])
            if image.get("format") not in ("png", "jpeg", "gif", "webp") or not _dict(
                image.get("source")
            ).get("bytes"):
                return None
            tokens += IMAGE_TOKENS
        elif "document" in block:
            document = _dict(block["document"])
            if (
                not document.get("name")
                or not document.get("format")
                or not _dict(document.get("source")).get("bytes")
            ):
                return None
            tokens += DOCUMENT_TOKENS + _words(document.get("name"))
        elif "toolUse" in block:
            tokens += len(orjson.dumps(_dict(block["toolUse"]).get("input") or {})) // 4
        elif "toolResult" in block:
            inner = _block_tokens(_dict(block["toolResult"]).get("content"))
            if inner is None:
                return None
            tokens += inner
        else:
            return None
    return tokens


def prompt_tokens(body: dict[str, Any]) -> int | None:
    total = _block_tokens(body.get("system") or [])
    if total is None:
        return None
    for message in body["messages"]:
        tokens = _block_tokens(_dict(message).get("content"))
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
    usage = {"inputTokens": prompt - read - written, "outputTokens": output, "totalTokens": prompt + output}
    if read or written:
        usage["cacheReadInputTokens"] = read
        usage["cacheWriteInputTokens"] = written
    return usage


def tool_to_call(body: dict[str, Any]) -> dict[str, Any] | None:
    config = _dict(body.get("toolConfig"))
    specs = [_dict(_dict(t).get("toolSpec")) for t in config.get("tools") or []]
    tools = [s for s in specs if isinstance(s.get("name"), str)]
    if not tools:
        return None
    choice = _dict(config.get("toolChoice"))
    if "tool" in choice:
        return next((t for t in tools if t["name"] == _dict(choice["tool"]).get("name")), None)
    if "any" in choice:
        return tools[0]
    for message in reversed(body["messages"]):
        if _dict(message).get("role") == "user":
            text = " ".join(
                b["text"] for b in message.get("content") or [] if isinstance(_dict(b).get("text"), str)
            )
            return next((t for t in tools if t["name"] in text), None)
    return None


def tool_input(tool: dict[str, Any]) -> dict[str, Any]:
    schema = _dict(_dict(tool.get("inputSchema")).get("json"))
    properties = _dict(schema.get("properties"))
    required = schema.get("required") if isinstance(schema.get("required"), list) else []
    return {
        name: SAMPLE_VALUES.get(_dict(properties.get(name)).get("type", "string"), "sim") for name in required
    }


def _validate(request: Request, body: Any) -> Response | None:
    if not AUTHORIZATION.match(request.headers.get("authorization", "")) or not request.headers.get(
        "x-amz-date"
    ):
        return bedrock_error(
            "The security token included in the request is invalid.", 403, "UnrecognizedClientException"
        )
    if not isinstance(body, dict):
        return bedrock_error("The request body must be a JSON object.", 400, "ValidationException")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return bedrock_error("messages: at least one message is required", 400, "ValidationException")
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            return bedrock_error("messages: roles must be 'user' or 'assistant'", 400, "ValidationException")
    max_tokens = _dict(body.get("inferenceConfig")).get("maxTokens", DEFAULT_MAX_TOKENS)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        return bedrock_error(
            "inferenceConfig.maxTokens must be a positive integer", 400, "ValidationException"
        )
    return None


async def converse(request: Request) -> Response:
    return await _converse(request, stream=False)


async def converse_stream(request: Request) -> Response:
    return await _converse(request, stream=True)


async def _converse(request: Request, *, stream: bool) -> Response:
    stats: SimStats = request.app.state.stats
    stats.converse += 1
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return bedrock_error("The request body is not valid JSON.", 400, "ValidationException")
    refused = _validate(request, body)
    if refused is not None:
        return refused
    model: str = request.path_params["model_id"]
    stats.count(model)
    await delay_for(model, request)
    for cue, status, error_type in CUED_ERRORS:
        if cue in model:
            return bedrock_error(f"The simulated upstream answered {status}.", status, error_type)
    prompt = prompt_tokens(body)
    if prompt is None:
        return bedrock_error("messages: a content block is malformed", 400, "ValidationException")
    max_tokens = _dict(body.get("inferenceConfig")).get("maxTokens", DEFAULT_MAX_TOKENS)
    n = completion_token_count(model, max_tokens)
    tool = tool_to_call(body)
    stop_reason = "tool_use" if tool is not None else "max_tokens" if n >= max_tokens else "end_turn"
    usage = usage_of(model, prompt, n)
    if stream:
        delay = chunk_delay_of(request) or (DRIP_CHUNK_DELAY_S if "drip" in model else 0.0)
        events = _stream(model, n, tool, stop_reason, usage, delay, stats, request.headers)
        return StreamingResponse(events, media_type="application/vnd.amazon.eventstream")
    if tool is not None:
        use = {
            "toolUseId": f"tooluse_{uuid.uuid4().hex[:22]}",
            "name": tool["name"],
            "input": tool_input(tool),
        }
        content: list[dict[str, Any]] = [{"toolUse": use}]
    else:
        content = [{"text": " ".join(f"tok{i}" for i in range(n))}]
    answer = {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason,
        "usage": usage,
        "metrics": {"latencyMs": 1},
    }
    return Response(orjson.dumps(answer), media_type="application/json")


async def _stream(
    model: str,
    n: int,
    tool: dict[str, Any] | None,
    stop_reason: str,
    usage: dict[str, Any],
    delay: float,
    stats: SimStats,
    headers: Any,
) -> AsyncIterator[bytes]:
    sent = 0
    try:
        yield event("messageStart", {"role": "assistant"})
        if tool is not None:
            start = {"toolUse": {"toolUseId": f"tooluse_{uuid.uuid4().hex[:22]}", "name": tool["name"]}}
            yield event("contentBlockStart", {"contentBlockIndex": 0, "start": start})
            arguments = orjson.dumps(tool_input(tool)).decode()
            half = len(arguments) // 2
            for piece in (arguments[:half], arguments[half:]):
                yield event(
                    "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": piece}}}
                )
                sent += 1
        else:
            for i in range(n):
                if "streamfail" in model and i == 2:
                    yield exception("ModelStreamErrorException", "The model stream failed.")
                    return
                yield event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": f"tok{i} "}})
                sent += 1
                if delay:
                    await asyncio.sleep(delay)
        yield event("contentBlockStop", {"contentBlockIndex": 0})
        yield event("messageStop", {"stopReason": stop_reason})
        yield event("metadata", {"usage": usage, "metrics": {"latencyMs": 1}})
    except (asyncio.CancelledError, GeneratorExit):
        stats.streams_aborted.append(
            {"model": model, "tag": headers.get("x-sim-tag", ""), "chunks_sent": sent, "of": n}
        )
        raise
    stats.streams_completed += 1
