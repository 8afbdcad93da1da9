"""One error class per failure, carrying its HTTP status and a stable code.

Each service renders these in the envelope its routes document (OpenAI's on /v1/*, a seed's own
shape on its routes); see `tollgate.common.http.openai_error_body`.
"""

from __future__ import annotations


class TollgateError(Exception):
    status_code = 500
    error_type = "api_error"
    code = "internal_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class InvalidRequest(TollgateError):
    status_code = 400
    error_type = "invalid_request_error"
    code = "invalid_request"


class Unauthenticated(TollgateError):
    status_code = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class Forbidden(TollgateError):
    status_code = 403
    error_type = "permission_error"
    code = "forbidden"


class NotFound(TollgateError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "not_found"


class InsufficientCredits(TollgateError):
    status_code = 402
    error_type = "insufficient_quota"
    code = "insufficient_credits"


class RateLimited(TollgateError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamError(TollgateError):
    status_code = 502
    error_type = "api_error"
    code = "upstream_error"


class UpstreamTimeout(TollgateError):
    status_code = 504
    error_type = "api_error"
    code = "upstream_timeout"


class ServiceUnavailable(TollgateError):
    status_code = 503
    error_type = "api_error"
    code = "service_unavailable"
