"""Seed 001's error envelope for /cost/*; every other billing route keeps OpenAI's (the default).

{"error": {"code": "INVALID_PARAMETER", "message": "...", "details": {...}, "request_id": "req_..."}}
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from tollgate.common.errors import TollgateError
from tollgate.common.http import default_error_renderer

SEED_001_PREFIX = "/cost/"

# Seed 001's "Common Error Codes" by HTTP status; 409 is ours (the seed lists no conflict).
SEED_CODES = {
    400: "INVALID_PARAMETER",
    401: "UNAUTHORIZED",
    402: "INSUFFICIENT_FUNDS",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


# Where one status carries two seed codes, the error's own code decides.
SEED_CODES_BY_REASON = {"quota_exceeded": "QUOTA_EXCEEDED"}


def seed_code(exc: TollgateError) -> str:
    if exc.code in SEED_CODES_BY_REASON:
        return SEED_CODES_BY_REASON[exc.code]
    fallback = "INTERNAL_ERROR" if exc.status_code >= 500 else "INVALID_PARAMETER"
    return SEED_CODES.get(exc.status_code, fallback)


def seed_error_body(request: Request, exc: TollgateError) -> dict[str, Any]:
    details: dict[str, Any] = {"reason": exc.code}
    if exc.param:
        details["parameter"] = exc.param
    details.update(getattr(exc, "details", None) or {})
    return {
        "error": {
            "code": seed_code(exc),
            "message": exc.message,
            "details": details,
            "request_id": getattr(request.state, "request_id", None),
        }
    }


def billing_error_renderer(request: Request, exc: TollgateError) -> dict[str, Any]:
    if request.url.path.startswith(SEED_001_PREFIX):
        return seed_error_body(request, exc)
    return default_error_renderer(request, exc)
