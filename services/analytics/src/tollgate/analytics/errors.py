"""SloughGPT's error envelope: {"error": {"code", "message", "details", "request_id"}}."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from tollgate.common.errors import InvalidRequest, TollgateError
from tollgate.common.sloughgpt import sloughgpt_error_body


class InvalidParameter(InvalidRequest):
    """A bad query parameter; `details` names it and echoes the value, as SloughGPT shows."""

    code = "INVALID_PARAMETER"

    def __init__(self, message: str, *, param: str, value: Any, **details: Any) -> None:
        super().__init__(message, param=param)
        self.details: dict[str, Any] = {"parameter": param, "value": value, **details}


def sloughgpt_error_envelope(request: Request, exc: TollgateError) -> dict[str, Any]:
    return sloughgpt_error_body(request, exc)
