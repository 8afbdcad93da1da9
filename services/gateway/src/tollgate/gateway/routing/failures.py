"""What an upstream attempt's failure means (routing/attempts.py retries what another try may fix).

AttemptFailed: a connection error, a timeout, a 429 or a 5xx (worth a retry on the same model), or
another upstream failure such as a 401 (the next model, no retry). UpstreamRejected: a refusal that is
the caller's fault (400 / 413 / 422), passed on at once with the provider's body.
"""

from __future__ import annotations


class UpstreamRejected(Exception):
    def __init__(self, status_code: int, body: bytes) -> None:
        super().__init__(status_code)
        self.status_code = status_code
        self.body = body


CALLER_FAULTS = frozenset({400, 413, 422})  # passed through at once


class AttemptFailed(Exception):
    def __init__(
        self, status: str, message: str, *, status_code: int = 0, body: bytes = b"", retry: bool = True
    ) -> None:
        super().__init__(message)
        self.status = status  # the usage event's status: "upstream_error" | "upstream_timeout"
        self.message = message
        self.status_code = status_code  # the upstream's HTTP status (0: it never answered)
        self.body = body
        self.retry = retry  # worth another try on the same model


def timed_out() -> AttemptFailed:
    return AttemptFailed("upstream_timeout", "The upstream model did not answer in time.")


def unreachable() -> AttemptFailed:
    return AttemptFailed("upstream_error", "The upstream model could not be reached.")


def refused(status_code: int, body: bytes) -> Exception:
    """What an upstream's non-200 answer means: the caller's fault (UpstreamRejected) or a failure."""
    if status_code in CALLER_FAULTS:
        return UpstreamRejected(status_code, body)
    return AttemptFailed(
        "upstream_error",
        f"The upstream model failed (HTTP {status_code}).",
        status_code=status_code,
        body=body,
        retry=status_code == 429 or status_code >= 500,
    )
