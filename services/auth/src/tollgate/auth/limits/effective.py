"""How a key's or an organisation's rate limits are worked out, pure (no database): shared by
Authenticate's one query (keys/repository.py) and the admin views (limits/service.py).

Each measure (requests per minute, tokens per minute, tokens per day) is the subject's own
override where set, else its tier's, else not limited. A key and its organisation are separate
limits, both enforced by the gateway: a key's numbers never come from its organisation's.
A key without a tier takes AUTH_DEFAULT_RATE_TIER (none by default); an organisation does not."""

from __future__ import annotations

from dataclasses import dataclass

from tollgate.common.auth_client import NO_RATE_LIMITS, RateLimits


@dataclass(frozen=True, slots=True)
class Measures:
    """Requests per minute, tokens per minute, tokens per day; None: not set (not limited for a
    tier, "the tier's" for an override)."""

    rpm: int | None = None
    tpm: int | None = None
    tpd: int | None = None


NOT_SET = Measures()


def effective(tier: str | None, tier_measures: Measures | None, overrides: Measures = NOT_SET) -> RateLimits:
    """`tier`: the tier's name; `tier_measures`: its numbers, None when it names no stored tier (a
    default tier that does not exist limits nothing, and is reported as no tier)."""
    if tier_measures is None and overrides == NOT_SET:
        return NO_RATE_LIMITS
    base = tier_measures or NOT_SET
    return RateLimits(
        tier=(tier or "") if tier_measures is not None else "",
        rpm=_pick(overrides.rpm, base.rpm),
        tpm=_pick(overrides.tpm, base.tpm),
        tpd=_pick(overrides.tpd, base.tpd),
    )


def _pick(override: int | None, tier_value: int | None) -> int:
    if override is not None:
        return override
    return tier_value or 0  # 0: not limited (the contract's encoding)


def as_measures(limits: RateLimits) -> Measures:
    """The other way, for admin answers: 0 (not limited) becomes None (JSON null)."""
    return Measures(limits.rpm or None, limits.tpm or None, limits.tpd or None)
