"""Hand validation of a chat completion body: cheaper than a pydantic model on the hot path,
and it reports OpenAI-style `param` paths (e.g. "messages[1].role")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from tollgate.common.errors import InvalidRequest


@dataclass(slots=True)
class ChatRequest:
    payload: dict[str, Any]  # the parsed body, forwarded to the upstream (model swapped)
    model: str
    messages: list[dict[str, Any]]
    stream: bool
    include_usage: bool
    max_tokens: int | None


def _optional_positive_int(payload: dict[str, Any], name: str) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidRequest(f"'{name}' must be a positive integer.", param=name)
    return value


def parse_chat_request(body: bytes) -> ChatRequest:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "We could not parse the JSON body of your request.", code="invalid_json"
        ) from None
    if not isinstance(payload, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string.", param="model")
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array.", param="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest(f"'messages[{i}]' must be an object.", param=f"messages[{i}]")
        role = message.get("role")
        if not isinstance(role, str) or not role:
            raise InvalidRequest(f"'messages[{i}].role' is required.", param=f"messages[{i}].role")
    stream = payload.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean.", param="stream")
    options = payload.get("stream_options")
    include_usage = False
    if options is not None:
        if not isinstance(options, dict):
            raise InvalidRequest("'stream_options' must be an object.", param="stream_options")
        include_usage = options.get("include_usage") is True
    max_tokens = _optional_positive_int(payload, "max_tokens")
    max_completion_tokens = _optional_positive_int(payload, "max_completion_tokens")
    return ChatRequest(
        payload=payload,
        model=model,
        messages=messages,
        stream=stream,
        include_usage=include_usage and stream,
        max_tokens=max_tokens if max_tokens is not None else max_completion_tokens,
    )
