"""Hand validation of a chat completion body: cheaper than a pydantic model on the hot path,
and it reports OpenAI-style `param` paths (e.g. "messages[1].role"). The checks it shares with the
other operations (JSON object, messages, stream, positive integers) live in operations/parse.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tollgate.common.errors import InvalidRequest
from tollgate.gateway.checks.sampling import check_sampling
from tollgate.gateway.operations import requests as parse


@dataclass(slots=True)
class ChatRequest:
    payload: dict[str, Any]  # the parsed body, forwarded to the upstream (model swapped)
    model: str
    messages: list[dict[str, Any]]
    stream: bool
    include_usage: bool
    max_tokens: int | None


def parse_chat_request(body: bytes) -> ChatRequest:
    payload = parse.json_object(body)
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string.", param="model")
    messages = parse.messages(payload)
    stream = parse.stream_flag(payload)
    include_usage = parse.include_usage(payload)
    max_tokens = parse.optional_positive_int(payload, "max_tokens")
    max_completion_tokens = parse.optional_positive_int(payload, "max_completion_tokens")
    check_sampling(payload)  # OpenAI's ranges: refused here, before any hold, not by the provider
    return ChatRequest(
        payload=payload,
        model=model,
        messages=messages,
        stream=stream,
        include_usage=include_usage and stream,
        max_tokens=max_tokens if max_tokens is not None else max_completion_tokens,
    )
