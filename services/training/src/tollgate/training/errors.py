"""Training's failures, each with its status and stable code, and the envelope per route family:
OpenAI's on /v1/* (files, fine_tuning, models), SloughGPT's on /training, /fine-tuning and
/models."""

from __future__ import annotations

from typing import Any

from tollgate.common.errors import InvalidRequest, TollgateError
from tollgate.common.sloughgpt import sloughgpt_renderer

SLOUGHGPT_PREFIXES = ("/training/", "/fine-tuning/", "/models", "/vectors/", "/search/")

render_error = sloughgpt_renderer(*SLOUGHGPT_PREFIXES)


class Conflict(TollgateError):
    status_code = 409
    error_type = "invalid_request_error"
    code = "conflict"


class InvalidFile(InvalidRequest):
    """An upload or inline training data that fails validation; nothing of it is stored."""

    code = "invalid_file"

    def __init__(self, message: str, *, param: str, line: int | None = None) -> None:
        super().__init__(message, param=param)
        self.details: dict[str, Any] = {"line": line} if line is not None else {}


class FileTooLarge(TollgateError):
    status_code = 413
    error_type = "invalid_request_error"
    code = "file_too_large"
