"""SloughGPT's error envelope, for the routes that document it (each service names its prefixes):

{"error": {"code": "INVALID_PARAMETER", "message": "...", "details": {...}, "request_id": "req_..."}}

`code` is SloughGPT's "Common Error Codes" by HTTP status; `details.reason` keeps our own error code
(e.g. `budget_exceeded`), `details.parameter` names the bad field, and an error's own `details`
(e.g. the rejected value) are merged in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request

from tollgate.common.errors import TollgateError
from tollgate.common.http import default_error_renderer

# SloughGPT's codes by HTTP status; 405 and 409 are ours (SloughGPT lists neither).
SLOUGHGPT_CODES: Mapping[int, str] = {
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
# Where one status carries two SloughGPT codes, the error's own code decides.
SLOUGHGPT_CODES_BY_REASON: Mapping[str, str] = {"quota_exceeded": "QUOTA_EXCEEDED"}


def sloughgpt_code(exc: TollgateError, by_status: Mapping[int, str] = SLOUGHGPT_CODES) -> str:
    if exc.code in SLOUGHGPT_CODES_BY_REASON:
        return SLOUGHGPT_CODES_BY_REASON[exc.code]
    fallback = "INTERNAL_ERROR" if exc.status_code >= 500 else "INVALID_PARAMETER"
    return by_status.get(exc.status_code, fallback)


def sloughgpt_error_body(
    request: Request,
    exc: TollgateError,
    *,
    extra_details: Mapping[str, Any] | None = None,
    by_status: Mapping[int, str] = SLOUGHGPT_CODES,
) -> dict[str, Any]:
    details: dict[str, Any] = {"reason": exc.code, **(extra_details or {})}
    if exc.param:
        details["parameter"] = exc.param
    details.update(getattr(exc, "details", None) or {})
    return {
        "error": {
            "code": sloughgpt_code(exc, by_status),
            "message": exc.message,
            "details": details,
            "request_id": request.scope.get("state", {}).get("request_id"),
        }
    }


def sloughgpt_renderer(*prefixes: str) -> Callable[[Request, TollgateError], dict[str, Any]]:
    """create_app's error renderer: SloughGPT's envelope under `prefixes`, OpenAI's elsewhere."""

    def render(request: Request, exc: TollgateError) -> dict[str, Any]:
        if request.url.path.startswith(prefixes):
            return sloughgpt_error_body(request, exc)
        return default_error_renderer(request, exc)

    return render
