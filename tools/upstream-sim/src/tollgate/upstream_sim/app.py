"""A deterministic OpenAI-compatible upstream (and Anthropic's Messages API, anthropic.py): the only
provider stand-in Tollgate's tests use.

It must be cheap enough that the gateway benchmark measures the gateway, not the simulator, so it
is a bare Starlette app: orjson, no per-request logging, no validation beyond what it needs.
Behaviour is chosen by the upstream model name (see README in the package docstring of `main`).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tollgate.upstream_sim.rich import RichAnswer, answer, stream_deltas, wants_rich

SLOW_DELAY_S = 0.3
TIMEOUT_DELAY_S = 30.0
DRIP_CHUNK_DELAY_S = 0.05  # "drip" models stream slowly, so tests can disconnect mid-stream
DEFAULT_COMPLETION_TOKENS = 16
LONG_COMPLETION_TOKENS = 64
SIM_MODELS = (
    "sim-model",
    "sim-model-long",
    "sim-model-nousage",
    "sim-model-slow",
    "sim-error",
    "sim-timeout",
)


@dataclass
class SimStats:
    """Per-app counters; tests read them to prove whether the gateway called the upstream at all."""

    chat_completions: int = 0
    completions: int = 0
    embeddings: int = 0
    images: int = 0
    messages: int = 0  # Anthropic's dialect: POST /v1/messages (anthropic.py)
    converse: int = 0  # Bedrock's dialect: POST /model/{id}/converse[-stream] (converse.py)
    # calls per upstream model name, every operation: tests that register their own model read it
    by_model: dict[str, int] = field(default_factory=dict)
    # streamed answers: how each ended, and how many content chunks an aborted one had sent when its
    # caller went away (a gateway whose client disconnected must stop the generation)
    streams_completed: int = 0
    streams_aborted: list[dict[str, Any]] = field(default_factory=list)

    def count(self, model: str) -> None:
        self.by_model[model] = self.by_model.get(model, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "chat_completions": self.chat_completions,
            "completions": self.completions,
            "embeddings": self.embeddings,
            "images": self.images,
            "messages": self.messages,
            "converse": self.converse,
            "by_model": self.by_model,
            "streams_completed": self.streams_completed,
            "streams_aborted": self.streams_aborted,
        }


def json_response(content: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


def error_response(message: str, status_code: int, error_type: str, code: str) -> Response:
    body = {"error": {"message": message, "type": error_type, "code": code, "param": None}}
    return json_response(body, status_code)


def count_prompt_tokens(messages: Any) -> int:
    """Whitespace-separated words across all message contents (text parts of list content too)."""
    words = 0
    if not isinstance(messages, list):
        return 0
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            words += len(content.split())
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    words += len(part["text"].split())
    return words


def completion_token_count(model: str, max_tokens: Any) -> int:
    limit = max_tokens if isinstance(max_tokens, int) and max_tokens >= 0 else None
    if model.endswith("-long"):
        return LONG_COMPLETION_TOKENS if limit is None else limit
    return min(DEFAULT_COMPLETION_TOKENS if limit is None else limit, DEFAULT_COMPLETION_TOKENS)


async def delay_for(model: str, request: Request) -> None:
    delay = 0.0
    header = request.headers.get("x-sim-delay-ms")
    if header:
        try:
            delay = max(0.0, float(header) / 1000.0)
        except ValueError:
            delay = 0.0
    if "timeout" in model:
        delay = max(delay, TIMEOUT_DELAY_S)
    elif "slow" in model:
        delay = max(delay, SLOW_DELAY_S)
    if delay:
        await asyncio.sleep(delay)


_CUE = re.compile(r"(flaky|ratelimited)(\d*)")


def cued_failure(model: str, calls: int) -> Response | None:
    """Failures on cue, for the gateway's retries and fallbacks: "error" always answers 500,
    "badrequest" 400, "ratelimited" 429; "flaky<N>" answers 500 and "ratelimited<N>" 429 to the
    first N calls of that model name (N defaults to 1; /_sim/reset starts the count again), then
    answers normally. `calls` counts this one."""
    if "error" in model:
        return error_response("The simulated upstream failed.", 500, "server_error", "sim_error")
    if "badrequest" in model:
        return error_response(
            "The simulated upstream refused the request.", 400, "invalid_request_error", "sim_bad"
        )
    cue = _CUE.search(model)
    if cue is None:
        return None
    kind, count = cue.group(1), cue.group(2)
    if kind == "ratelimited" and not count:
        return error_response("The simulated upstream is rate limited.", 429, "rate_limit_error", "sim_busy")
    if calls > int(count or 1):
        return None
    if kind == "ratelimited":
        return error_response("The simulated upstream is rate limited.", 429, "rate_limit_error", "sim_busy")
    return error_response("The simulated upstream failed on cue.", 500, "server_error", "sim_flaky")


async def chat_completions(request: Request) -> Response:
    request.app.state.stats.chat_completions += 1
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return error_response("Request body is not valid JSON.", 400, "invalid_request_error", "invalid_json")
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return error_response("`model` is required.", 400, "invalid_request_error", "invalid_request")
    model: str = body["model"]
    request.app.state.stats.count(model)
    await delay_for(model, request)
    failure = cued_failure(model, request.app.state.stats.by_model[model])
    if failure is not None:
        return failure

    prompt_tokens = count_prompt_tokens(body.get("messages"))
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    n = completion_token_count(model, max_tokens)
    # tools, response_format, "echo" models (rich.py); plain requests skip it in two dict lookups
    rich = answer(body, model) if wants_rich(body, model) else None
    if rich is not None:
        n = rich_tokens(rich)
    usage = usage_of(model, prompt_tokens, n)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())

    if body.get("stream"):
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        if "nousage" in model:
            include_usage = False  # like llama-cpp-python's server, which ignores include_usage
        if rich is not None:
            base = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
            }
            return StreamingResponse(
                _rich_stream(base, rich, usage if include_usage else None, request.app.state.stats),
                media_type="text/event-stream",
                headers={"cache-control": "no-cache"},
            )
        chunk_delay = chunk_delay_of(request) or (DRIP_CHUNK_DELAY_S if "drip" in model else 0.0)
        return StreamingResponse(
            _stream(
                completion_id,
                created,
                model,
                n,
                usage if include_usage else None,
                chunk_delay,
                request.app.state.stats,
                request.headers.get("x-sim-tag", ""),
            ),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache"},
        )

    if rich is not None:
        message, finish_reason = rich.message(), rich.finish_reason
    else:
        message, finish_reason = (
            {"role": "assistant", "content": " ".join(f"tok{i}" for i in range(n))},
            "stop",
        )
    return json_response(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
            "usage": usage,
        }
    )


def rich_tokens(rich: RichAnswer) -> int:
    """A rich answer's completion tokens: about four characters each, as OpenAI's tokenizers go."""
    text = rich.content or "".join(c["function"]["arguments"] for c in rich.tool_calls or [])
    return max(1, len(text) // 4)


async def _rich_stream(
    base: dict[str, Any], rich: RichAnswer, usage: dict[str, Any] | None, stats: SimStats
) -> AsyncIterator[bytes]:
    for delta, finish_reason in stream_deltas(rich):
        chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
        yield b"data: " + orjson.dumps(chunk) + b"\n\n"
    if usage is not None:
        yield b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n"
    yield b"data: [DONE]\n\n"
    stats.streams_completed += 1


def chunk_delay_of(request: Request) -> float:
    # Lets tests hold a stream open long enough to disconnect in the middle of it.
    header = request.headers.get("x-sim-chunk-delay-ms")
    try:
        return max(0.0, float(header) / 1000.0) if header else 0.0
    except ValueError:
        return 0.0


def usage_of(model: str, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """OpenAI's usage object. Models named "...-cachedetail..." also report token classes the way
    OpenAI does (half the prompt read from the cache, half the completion reasoning); "...-cachewrite..."
    reports them as OpenAI-compatible proxies of Anthropic models do (top-level cache counts)."""
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if "cachedetail" in model:
        usage["prompt_tokens_details"] = {"cached_tokens": prompt_tokens // 2, "audio_tokens": 0}
        usage["completion_tokens_details"] = {"reasoning_tokens": completion_tokens // 2}
    if "cachewrite" in model:
        usage["cache_read_input_tokens"] = prompt_tokens // 4
        usage["cache_creation_input_tokens"] = prompt_tokens // 2
    return usage


async def _stream(
    completion_id: str,
    created: int,
    model: str,
    n: int,
    usage: dict[str, Any] | None,
    chunk_delay: float,
    stats: SimStats,
    tag: str,
) -> AsyncIterator[bytes]:
    base = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model}
    sent = 0
    try:
        for i in range(n):
            delta: dict[str, Any] = {"content": f"tok{i} "}
            if i == 0:
                delta["role"] = "assistant"
            chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
            sent += 1
            if chunk_delay:
                await asyncio.sleep(chunk_delay)
        final = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        yield b"data: " + orjson.dumps(final) + b"\n\n"
        if usage is not None:
            yield b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n"
        yield b"data: [DONE]\n\n"
    except (asyncio.CancelledError, GeneratorExit):
        # the caller went away mid-stream: the generation stops here
        stats.streams_aborted.append({"model": model, "tag": tag, "chunks_sent": sent, "of": n})
        raise
    stats.streams_completed += 1


async def list_models(request: Request) -> Response:
    created = int(time.time())
    data = [{"id": m, "object": "model", "created": created, "owned_by": "upstream-sim"} for m in SIM_MODELS]
    return json_response({"object": "list", "data": data})


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok", "service": "upstream-sim"})


async def stats(request: Request) -> Response:
    return json_response(request.app.state.stats.as_dict())


async def reset(request: Request) -> Response:
    request.app.state.stats = SimStats()
    return json_response(request.app.state.stats.as_dict())


def create_app() -> Starlette:
    from tollgate.upstream_sim import anthropic, converse, operations  # they use this module's helpers

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/completions", operations.completions, methods=["POST"]),
            Route("/v1/embeddings", operations.embeddings, methods=["POST"]),
            Route("/v1/images/generations", operations.images, methods=["POST"]),
            Route("/v1/messages", anthropic.messages, methods=["POST"]),
            Route("/messages", anthropic.messages, methods=["POST"]),
            Route("/model/{model_id:path}/converse", converse.converse, methods=["POST"]),
            Route("/model/{model_id:path}/converse-stream", converse.converse_stream, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/_sim/stats", stats, methods=["GET"]),
            Route("/_sim/reset", reset, methods=["POST"]),
        ]
    )
    app.state.stats = SimStats()
    return app
