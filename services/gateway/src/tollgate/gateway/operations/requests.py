"""Hand validation of the operations' request bodies, shared by every route family; it raises
InvalidRequest with the offending `param` (each family renders it in its own envelope)."""

from __future__ import annotations

from typing import Any

import orjson

from tollgate.common.errors import InvalidRequest
from tollgate.gateway.providers.documents import DOCS_MARK, normalise_parts

MAX_IMAGES = 10
MAX_INPUTS = 2048


def json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "We could not parse the JSON body of your request.", code="invalid_json"
        ) from None
    if not isinstance(payload, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return payload


def required_string(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"'{name}' is required and must be a non-empty string.", param=name)
    return value


def optional_positive_int(payload: dict[str, Any], name: str, *, maximum: int | None = None) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or (maximum and value > maximum):
        bound = f" between 1 and {maximum}" if maximum else ""
        raise InvalidRequest(f"'{name}' must be a positive integer{bound}.", param=name)
    return value


def stream_flag(payload: dict[str, Any]) -> bool:
    stream = payload.get("stream")
    if stream is None:
        return False
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean.", param="stream")
    return stream


def include_usage(payload: dict[str, Any]) -> bool:
    options = payload.get("stream_options")
    if options is None:
        return False
    if not isinstance(options, dict):
        raise InvalidRequest("'stream_options' must be an object.", param="stream_options")
    return options.get("include_usage") is True


def text_or_texts(payload: dict[str, Any], name: str) -> list[str]:
    """A non-empty string or a non-empty array of strings (prompts, embedding inputs)."""
    value = payload.get(name)
    if isinstance(value, str) and value:
        return [value]
    if (
        isinstance(value, list)
        and value
        and len(value) <= MAX_INPUTS
        and all(isinstance(v, str) and v for v in value)
    ):
        return list(value)
    raise InvalidRequest(
        f"'{name}' must be a non-empty string or an array of 1-{MAX_INPUTS} non-empty strings.", param=name
    )


def messages(payload: dict[str, Any]) -> list[dict[str, Any]]:
    value = payload.get("messages")
    if not isinstance(value, list) or not value:
        raise InvalidRequest("'messages' must be a non-empty array.", param="messages")
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise InvalidRequest(f"'messages[{i}]' must be an object.", param=f"messages[{i}]")
        role = message.get("role")
        if not isinstance(role, str) or not role:
            raise InvalidRequest(f"'messages[{i}].role' is required.", param=f"messages[{i}].role")
        # the Bedrock-style gateway's doc parts: checked here (400 before any hold), only in list content
        if type(message.get("content")) is list and normalise_parts(message, i):
            payload[DOCS_MARK] = True
    return value


def image_count(payload: dict[str, Any]) -> int:
    return optional_positive_int(payload, "n", maximum=MAX_IMAGES) or 1
