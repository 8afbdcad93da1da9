"""The failures of the session routes, one class each (rendered in SloughGPT's envelope)."""

from __future__ import annotations

from tollgate.common.errors import InvalidRequest, RateLimited, TollgateError, Unauthenticated


class InvalidCredentials(Unauthenticated):
    code = "invalid_credentials"


class InvalidToken(Unauthenticated):
    code = "invalid_token"


class MissingCredentials(Unauthenticated):
    code = "missing_credentials"


class RefreshTokenReused(Unauthenticated):
    """The refusal must not undo the family's revocation: the request's transaction commits its
    writes before this is rendered (see `tollgate.auth.web.transaction`)."""

    code = "refresh_token_reused"
    commit_writes = True


class EmailTaken(TollgateError):
    status_code = 409
    error_type = "invalid_request_error"
    code = "email_taken"


class WeakPassword(InvalidRequest):
    code = "weak_password"


class LoginThrottled(RateLimited):
    code = "too_many_login_attempts"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.details = {"retry_after": retry_after_s}
