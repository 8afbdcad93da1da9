"""SloughGPT's error envelope for /auth/*; every other route keeps OpenAI's (create_app's default).

{"error": {"code": "UNAUTHORIZED", "message": "...", "details": {...}, "request_id": "req_..."}}
"""

from __future__ import annotations

from fastapi import Request

from tollgate.common.errors import TollgateError
from tollgate.common.http import ORJSONResponse
from tollgate.common.sloughgpt import sloughgpt_renderer

auth_error_renderer = sloughgpt_renderer("/auth/")


async def retry_after_handler(request: Request, exc: Exception) -> ORJSONResponse:
    """For errors carrying `retry_after_s` (429): the same body, plus the Retry-After header."""
    if not isinstance(exc, TollgateError):  # registered for TollgateError subclasses only
        raise exc
    headers = {"Retry-After": str(getattr(exc, "retry_after_s", 1))}
    return ORJSONResponse(auth_error_renderer(request, exc), status_code=exc.status_code, headers=headers)
