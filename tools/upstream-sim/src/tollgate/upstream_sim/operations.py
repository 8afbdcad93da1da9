"""The simulator's other OpenAI operations: text completions, embeddings and image generations.

Deterministic like chat: prompt tokens are whitespace-separated words, a completion has
min(max_tokens, 16) tokens ("-long" models: up to max_tokens, default 64), an embedding is an
8-number vector derived from the text, an image is a URL. Model-name behaviours as for chat
("error" answers 500, "flaky<N>" / "ratelimited<N>" fail the first N calls (app.cued_failure),
"slow"/"timeout" wait, "nousage" reports no usage).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tollgate.upstream_sim.app import (
    chunk_delay_of,
    completion_token_count,
    cued_failure,
    delay_for,
    error_response,
    json_response,
    usage_of,
)

EMBEDDING_DIMENSIONS = 8
MAX_IMAGES = 10


async def _parse(request: Request) -> tuple[dict[str, Any] | None, Response | None]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return None, error_response(
            "Request body is not valid JSON.", 400, "invalid_request_error", "invalid_json"
        )
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return None, error_response("`model` is required.", 400, "invalid_request_error", "invalid_request")
    model = body["model"]
    request.app.state.stats.count(model)
    await delay_for(model, request)
    failure = cued_failure(model, request.app.state.stats.by_model[model])
    if failure is not None:
        return None, failure
    return body, None


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _words(texts: list[str]) -> int:
    return sum(len(t.split()) for t in texts)


async def completions(request: Request) -> Response:
    request.app.state.stats.completions += 1
    body, refused = await _parse(request)
    if body is None:
        return refused  # type: ignore[return-value]
    model: str = body["model"]
    prompt_tokens = _words(_texts(body.get("prompt")))
    n = completion_token_count(model, body.get("max_tokens"))
    usage = usage_of(model, prompt_tokens, n)
    base = {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
    }
    if body.get("stream"):
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        if "nousage" in model:
            include_usage = False
        return StreamingResponse(
            _stream(base, n, usage if include_usage else None, chunk_delay_of(request)),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache"},
        )
    text = " ".join(f"tok{i}" for i in range(n))
    answer: dict[str, Any] = {
        **base,
        "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
    }
    if "nousage" not in model:
        answer["usage"] = usage
    return json_response(answer)


async def _stream(
    base: dict[str, Any], n: int, usage: dict[str, Any] | None, chunk_delay: float
) -> AsyncIterator[bytes]:
    for i in range(n):
        chunk = {**base, "choices": [{"index": 0, "text": f"tok{i} ", "finish_reason": None}]}
        yield b"data: " + orjson.dumps(chunk) + b"\n\n"
        if chunk_delay:
            await asyncio.sleep(chunk_delay)
    yield (
        b"data: "
        + orjson.dumps({**base, "choices": [{"index": 0, "text": "", "finish_reason": "stop"}]})
        + b"\n\n"
    )
    if usage is not None:
        yield b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n"
    yield b"data: [DONE]\n\n"


def embedding_of(text: str) -> list[float]:
    """Deterministic: the same text always gets the same vector."""
    digest = hashlib.sha256(text.encode()).digest()
    return [round((b - 128) / 128, 6) for b in digest[:EMBEDDING_DIMENSIONS]]


async def embeddings(request: Request) -> Response:
    request.app.state.stats.embeddings += 1
    body, refused = await _parse(request)
    if body is None:
        return refused  # type: ignore[return-value]
    texts = _texts(body.get("input"))
    if not texts:
        return error_response(
            "`input` must be a string or an array of strings.",
            400,
            "invalid_request_error",
            "invalid_request",
        )
    tokens = _words(texts)
    answer: dict[str, Any] = {
        "object": "list",
        "model": body["model"],
        "data": [
            {"object": "embedding", "index": i, "embedding": embedding_of(t)} for i, t in enumerate(texts)
        ],
    }
    if "nousage" not in body["model"]:
        answer["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
    return json_response(answer)


async def images(request: Request) -> Response:
    request.app.state.stats.images += 1
    body, refused = await _parse(request)
    if body is None:
        return refused  # type: ignore[return-value]
    prompt = body.get("prompt")
    n = body.get("n", 1)
    if not isinstance(prompt, str) or not prompt:
        return error_response("`prompt` is required.", 400, "invalid_request_error", "invalid_request")
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_IMAGES:
        return error_response(f"`n` must be 1-{MAX_IMAGES}.", 400, "invalid_request_error", "invalid_request")
    tokens = _words([prompt])
    key = hashlib.sha256(prompt.encode()).hexdigest()[:16]
    answer: dict[str, Any] = {
        "created": int(time.time()),
        "data": [
            {
                "url": f"https://upstream-sim.invalid/images/{key}-{i}.png",
                "b64_json": None,
                "revised_prompt": prompt,
            }
            for i in range(n)
        ],
    }
    if "nousage" not in body["model"]:
        answer["usage"] = {"input_tokens": tokens, "output_tokens": 0, "total_tokens": tokens}
    return json_response(answer)
