"""Anthropic's refusals (`{"type": "error", "error": {"type", "message"}}`) in OpenAI's envelope."""

from __future__ import annotations

from typing import Any

import orjson

from tollgate.gateway.providers.base import refused_message
from tollgate.gateway.providers.openai_chat import error_envelope

# Anthropic's error types, as OpenAI's envelope names them (its `code` keeps Anthropic's type).
ERROR_TYPES = {
    "invalid_request_error": "invalid_request_error",
    "request_too_large": "invalid_request_error",
    "not_found_error": "invalid_request_error",
    "authentication_error": "authentication_error",
    "permission_error": "permission_error",
    "rate_limit_error": "rate_limit_error",
    "overloaded_error": "api_error",
    "api_error": "api_error",
}


def openai_error(status_code: int, body: bytes) -> dict[str, Any]:
    kind = None
    try:
        data = orjson.loads(body)
        kind = data["error"]["type"]
    except (ValueError, KeyError, TypeError):
        pass
    if not isinstance(kind, str):
        kind = "rate_limit_error" if status_code == 429 else "invalid_request_error"
    error_type = ERROR_TYPES.get(kind, "invalid_request_error")
    code = "rate_limit_exceeded" if status_code == 429 else kind
    return error_envelope(refused_message(body, status_code), error_type, code)
