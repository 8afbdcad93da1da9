"""Seed 001's error envelope: {"error": {"code", "message", "details", "request_id"}}."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from tollgate.common.errors import InvalidRequest, TollgateError

# Seed 001 "Common Error Codes", by HTTP status.
_SEED_CODES = {
    400: "INVALID_PARAMETER",
    401: "UNAUTHORIZED",
    402: "INSUFFICIENT_FUNDS",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


class InvalidParameter(InvalidRequest):
    """A bad query parameter; `details` names it and echoes the value, as seed 001 shows."""

    code = "INVALID_PARAMETER"

    def __init__(self, message: str, *, param: str, value: Any, **details: Any) -> None:
        super().__init__(message, param=param)
        self.details: dict[str, Any] = {"parameter": param, "value": value, **details}


def seed_error_body(request: Request, exc: TollgateError) -> dict[str, Any]:
    status = exc.status_code
    code = _SEED_CODES.get(status, "INTERNAL_ERROR" if status >= 500 else "INVALID_PARAMETER")
    details: dict[str, Any] = dict(getattr(exc, "details", None) or {})
    if exc.param and "parameter" not in details:
        details["parameter"] = exc.param
    return {
        "error": {
            "code": code,
            "message": exc.message,
            "details": details,
            "request_id": getattr(request.state, "request_id", None),
        }
    }
