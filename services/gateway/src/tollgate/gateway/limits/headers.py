"""The X-RateLimit-* headers (SloughGPT's four) of a verdict, on every answer of a limited route."""

from __future__ import annotations

import math
import time

from tollgate.gateway.limits.specs import Verdict


def rate_limit_headers(verdict: Verdict, *, now: float | None = None) -> dict[str, str]:
    """Limit and Remaining of the tightest limit, Reset as a Unix time (seconds) when it is whole
    again, Retry-After in seconds (0 when allowed); a refusal adds the standard Retry-After."""
    limit = verdict.limit
    if limit is None:
        return {}
    wall = time.time() if now is None else now
    retry = math.ceil(verdict.retry_after_s) if not verdict.allowed else 0
    headers = {
        "x-ratelimit-limit": str(limit.limit),
        "x-ratelimit-remaining": str(max(verdict.remaining, 0)),
        "x-ratelimit-reset": str(math.ceil(wall + verdict.reset_s)),
        "x-ratelimit-retry-after": str(retry),
    }
    if not verdict.allowed:
        headers["retry-after"] = str(max(retry, 1))
    return headers
