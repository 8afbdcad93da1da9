"""Seed 001's error envelope for /auth/*; every other route keeps OpenAI's (create_app's default).

{"error": {"code": "UNAUTHORIZED", "message": "...", "details": {...}, "request_id": "req_..."}}
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from tollgate.common.errors import TollgateError
from tollgate.common.http import ORJSONResponse, default_error_renderer

SEED_PREFIX = "/auth/"

# Seed 001's codes by HTTP status; 409 is ours (the seed lists no conflict).
SEED_CODES = {
    400: "INVALID_PARAMETER",
    401: "UNAUTHORIZED",
    402: "INSUFFICIENT_FUNDS",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    429: "RATE_LIMITED",
    503: "SERVICE_UNAVAILABLE",
}


def seed_error_body(request: Request, exc: TollgateError) -> dict[str, Any]:
    details: dict[str, Any] = {"reason": exc.code}
    if exc.param:
        details["parameter"] = exc.param
    details.update(getattr(exc, "details", None) or {})
    return {
        "error": {
            "code": SEED_CODES.get(exc.status_code, "INTERNAL_ERROR"),
            "message": exc.message,
            "details": details,
            "request_id": getattr(request.state, "request_id", None),
        }
    }


def auth_error_renderer(request: Request, exc: TollgateError) -> dict[str, Any]:
    if request.url.path.startswith(SEED_PREFIX):
        return seed_error_body(request, exc)
    return default_error_renderer(request, exc)


async def retry_after_handler(request: Request, exc: Exception) -> ORJSONResponse:
    """For errors carrying `retry_after_s` (429): the same body, plus the Retry-After header."""
    if not isinstance(exc, TollgateError):  # registered for TollgateError subclasses only
        raise exc
    headers = {"Retry-After": str(getattr(exc, "retry_after_s", 1))}
    return ORJSONResponse(auth_error_renderer(request, exc), status_code=exc.status_code, headers=headers)
