"""Bedrock's refusals (`{"message": ...}`, the type in x-amzn-ErrorType or the body's `__type`, or an
exception event's `:exception-type`) in OpenAI's envelope."""

from __future__ import annotations

from typing import Any

import orjson

from tollgate.gateway.providers.openai_chat import error_envelope

# Bedrock's error types, as OpenAI's envelope names them.
ERROR_TYPES = {
    "ValidationException": "invalid_request_error",
    "ResourceNotFoundException": "invalid_request_error",
    "AccessDeniedException": "permission_error",
    "UnrecognizedClientException": "authentication_error",
    "ThrottlingException": "rate_limit_error",
    "ServiceQuotaExceededException": "rate_limit_error",
    "ModelNotReadyException": "api_error",
    "ServiceUnavailableException": "api_error",
    "InternalServerException": "api_error",
    "ModelTimeoutException": "api_error",
}
STATUS_TYPES = {400: "ValidationException", 403: "AccessDeniedException", 429: "ThrottlingException"}


def openai_error(status_code: int, body: bytes, error_type: str | None = None) -> dict[str, Any]:
    message = None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        message = data.get("message") or data.get("Message")
        error_type = error_type or data.get("__type")
    if isinstance(error_type, str):
        error_type = error_type.split(":")[0].rsplit("#", 1)[-1]
    else:
        error_type = STATUS_TYPES.get(
            status_code, "InternalServerException" if status_code >= 500 else "ValidationException"
        )
    if not isinstance(message, str) or not message:
        message = f"The upstream model refused the request (HTTP {status_code})."
    kind = ERROR_TYPES.get(error_type, "api_error" if status_code >= 500 else "invalid_request_error")
    code = "rate_limit_exceeded" if status_code == 429 else error_type
    return error_envelope(message, kind, code)
