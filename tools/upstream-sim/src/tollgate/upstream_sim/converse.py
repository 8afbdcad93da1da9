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

from tollgate.upstream_sim import block_dialects as dialects
from tollgate.upstream_sim.app import SimStats, delay_for
from tollgate.upstream_sim.block_dialects import DOCUMENT_TOKENS, IMAGE_TOKENS, as_object, words

DEFAULT_MAX_TOKENS = 4096
CUED_ERRORS = (  # modelId cue → (status, error type)
    ("notready", 429, "ModelNotReadyException"),
    ("unavailable", 503, "ServiceUnavailableException"),
    ("ratelimited", 429, "ThrottlingException"),
    ("badrequest", 400, "ValidationException"),
    ("error", 500, "InternalServerException"),
)
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


def _block_tokens(blocks: Any) -> int | None:
    if not isinstance(blocks, list):
        return None
    tokens = 0
    for block in blocks:
        if not isinstance(block, dict):
            return None
        if "text" in block:
            tokens += words(block["text"])
        elif "image" in block:
            image = as_object(block["image"])
            if image.get("format") not in ("png", "jpeg", "gif", "webp") or not as_object(
                image.get("source")
            ).get("bytes"):
                return None
            tokens += IMAGE_TOKENS
        elif "document" in block:
            document = as_object(block["document"])
            if (
                not document.get("name")
                or not document.get("format")
                or not as_object(document.get("source")).get("bytes")
            ):
                return None
            tokens += DOCUMENT_TOKENS + words(document.get("name"))
        elif "toolUse" in block:
            tokens += dialects.tool_use_tokens(as_object(block["toolUse"]).get("input"))
        elif "toolResult" in block:
            inner = _block_tokens(as_object(block["toolResult"]).get("content"))
            if inner is None:
                return None
            tokens += inner
        else:
            return None
    return tokens


def prompt_tokens(body: dict[str, Any]) -> int | None:
    system_tokens = _block_tokens(body.get("system") or [])
    return dialects.conversation_tokens(system_tokens, body["messages"], _block_tokens)


def usage_of(model: str, prompt: int, output: int) -> dict[str, Any]:
    read, written = dialects.cache_split(model, prompt)
    usage = {"inputTokens": prompt - read - written, "outputTokens": output, "totalTokens": prompt + output}
    if read or written:
        usage["cacheReadInputTokens"] = read
        usage["cacheWriteInputTokens"] = written
    return usage


def tool_to_call(body: dict[str, Any]) -> dict[str, Any] | None:
    config = as_object(body.get("toolConfig"))
    specs = [as_object(as_object(t).get("toolSpec")) for t in config.get("tools") or []]
    tools = [s for s in specs if isinstance(s.get("name"), str)]
    choice = as_object(config.get("toolChoice"))
    forced = "tool" if "tool" in choice else "any" if "any" in choice else None
    forced_name = as_object(choice.get("tool")).get("name")
    return dialects.tool_to_call(tools, forced, forced_name, _last_user_text(body["messages"]))


def _last_user_text(messages: list[Any]) -> str | None:
    for message in reversed(messages):
        if as_object(message).get("role") == "user":
            blocks = message.get("content") or []
            return " ".join(b["text"] for b in blocks if isinstance(as_object(b).get("text"), str))
    return None


def tool_input(tool: dict[str, Any]) -> dict[str, Any]:
    return dialects.sample_input(as_object(as_object(tool.get("inputSchema")).get("json")))


def _validate(request: Request, body: Any) -> Response | None:
    if not AUTHORIZATION.match(request.headers.get("authorization", "")) or not request.headers.get(
        "x-amz-date"
    ):
        return bedrock_error(
            "The security token included in the request is invalid.", 403, "UnrecognizedClientException"
        )
    if not isinstance(body, dict):
        return bedrock_error("The request body must be a JSON object.", 400, "ValidationException")
    problem = dialects.messages_problem(body.get("messages"))
    if problem is not None:
        return bedrock_error(problem, 400, "ValidationException")
    if not dialects.positive_int(as_object(body.get("inferenceConfig")).get("maxTokens", DEFAULT_MAX_TOKENS)):
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
    cued = dialects.cued_error(model, CUED_ERRORS)
    if cued is not None:
        return bedrock_error(f"The simulated upstream answered {cued[0]}.", *cued)
    prompt = prompt_tokens(body)
    if prompt is None:
        return bedrock_error("messages: a content block is malformed", 400, "ValidationException")
    max_tokens = as_object(body.get("inferenceConfig")).get("maxTokens", DEFAULT_MAX_TOKENS)
    answer = dialects.sim_answer(model, max_tokens, tool_to_call(body), prompt, usage_of)
    _, n, tool, stop_reason, usage = answer
    if stream:
        delay = dialects.stream_delay(request, model)
        events = _stream(answer, delay, stats, request.headers)
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
    reply = {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason,
        "usage": usage,
        "metrics": {"latencyMs": 1},
    }
    return Response(orjson.dumps(reply), media_type="application/json")


async def _stream(
    answer: dialects.SimAnswer, delay: float, stats: SimStats, headers: Any
) -> AsyncIterator[bytes]:
    model, n, tool, stop_reason, usage = answer
    sent = 0
    try:
        yield event("messageStart", {"role": "assistant"})
        if tool is not None:
            start = {"toolUse": {"toolUseId": f"tooluse_{uuid.uuid4().hex[:22]}", "name": tool["name"]}}
            yield event("contentBlockStart", {"contentBlockIndex": 0, "start": start})
            for piece in dialects.argument_halves(tool_input(tool)):
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
        dialects.count_abort(stats, model, headers, sent, n)
        raise
    stats.streams_completed += 1
