"""What a limit is, pure: a rate over a period for one subject (a key, an organisation, a model, an
address), and the tiers that set them (SloughGPT's three, editable by admins).

A limit is a generic cell rate (GCRA, docs/limits.md): `limit` units per `period_s`, a burst of up to
`limit` units, and units return continuously (a request per 0.6 s at 100 a minute), so a caller is
never refused for a whole window because of a burst at its start, and the state is one timestamp
per subject in Redis.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MINUTE_S = 60.0
DAY_S = 86_400.0
LIMIT_MEASURES = ("rpm", "tpm", "tpd")  # the settings' names, in Tier's order


class Measure(StrEnum):
    REQUESTS = "requests"
    TOKENS = "tokens"


class Scope(StrEnum):
    KEY = "key"
    ORG = "org"
    MODEL = "model"
    IP = "ip"


@dataclass(frozen=True, slots=True)
class Limit:
    """`limit` units of `measure` per `period_s` for one subject; `name` is what headers and errors
    call it (e.g. "requests per minute")."""

    scope: Scope
    subject: str
    measure: Measure
    limit: int
    period_s: float
    name: str

    @property
    def redis_key(self) -> str:
        return f"{self.scope.value}:{self.subject}:{self.measure.value}:{int(self.period_s)}"

    @property
    def interval_ms(self) -> float:
        """How long one unit takes to come back."""
        return self.period_s * 1000.0 / self.limit


@dataclass(frozen=True, slots=True)
class Tier:
    """Requests per minute, tokens per minute and tokens per day; None: not limited."""

    name: str
    rpm: int | None
    tpm: int | None
    tpd: int | None

    def limits(self, scope: Scope, subject: str) -> list[Limit]:
        limits = []
        if self.rpm:
            limits.append(Limit(scope, subject, Measure.REQUESTS, self.rpm, MINUTE_S, "requests per minute"))
        if self.tpm:
            limits.append(Limit(scope, subject, Measure.TOKENS, self.tpm, MINUTE_S, "tokens per minute"))
        if self.tpd:
            limits.append(Limit(scope, subject, Measure.TOKENS, self.tpd, DAY_S, "tokens per day"))
        return limits


# SloughGPT's published tiers ("Rate Limiting"); tokens per minute are not published, so not limited.
DEFAULT_TIERS: dict[str, Tier] = {
    "free": Tier("free", rpm=100, tpm=None, tpd=10_000),
    "pro": Tier("pro", rpm=1_000, tpm=None, tpd=100_000),
    "enterprise": Tier("enterprise", rpm=10_000, tpm=None, tpd=1_000_000),
}


@dataclass(frozen=True, slots=True)
class Cost:
    """What one request takes from a set of limits: one request, and its token estimate."""

    requests: int = 1
    tokens: int = 0

    def of(self, limit: Limit) -> int:
        return self.requests if limit.measure is Measure.REQUESTS else self.tokens


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer for one request: allowed or not, and for the tightest limit the numbers the
    X-RateLimit-* headers carry. `retry_after_s` is 0 when allowed; `never` marks a request larger
    than the limit itself (waiting will not help)."""

    allowed: bool
    limit: Limit | None
    remaining: int
    reset_s: float  # until the tightest limit is whole again
    retry_after_s: float = 0.0
    never: bool = False


UNLIMITED = Verdict(True, None, 0, 0.0)
