"""Request and response bodies of the rate-limit admin routes (the Bedrock-style gateway's admin shapes).

In requests and answers null means "not set": not limited for a tier's measure, the tier's for a
key's or organisation's override, none for a tier assignment."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from tollgate.auth.limits.effective import as_measures
from tollgate.common.auth_client import RateLimits

BIGINT_MAX = 9_223_372_036_854_775_807
# A name for headers and logs: letters, digits, "_", "." and "-", starting with a letter or digit.
TIER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
TierName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, strict=True, pattern=TIER_NAME_PATTERN
    ),
]
# Strict: `true` or "100" where a count belongs is a client bug; 0 is refused (null means unlimited).
LimitValue = Annotated[int, Field(strict=True, ge=1, le=BIGINT_MAX)]
KeyId = Annotated[int, Field(strict=True, ge=1, le=BIGINT_MAX)]
OrgId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, strict=True)]


class _Body(BaseModel):
    # An unknown field is most likely a typo ("rmp") that would otherwise be silently ignored.
    model_config = ConfigDict(extra="forbid")


class SaveTierRequest(_Body):
    """Creates the tier of that name or updates it; on an update, measures left out stay as they
    are (null: not limited)."""

    name: TierName
    rpm: LimitValue | None = None
    tpm: LimitValue | None = None
    tpd: LimitValue | None = None


class DeleteTierRequest(_Body):
    name: TierName


class _LimitsBody(_Body):
    """Fields left out stay as they are; null clears (no tier / the tier's number)."""

    tier: TierName | None = None
    rpm: LimitValue | None = None
    tpm: LimitValue | None = None
    tpd: LimitValue | None = None


class KeyLimitsRequest(_LimitsBody):
    id: KeyId


class OrgLimitsRequest(_LimitsBody):
    org_id: OrgId


class KeyLimitsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: Annotated[int, Field(ge=1, le=BIGINT_MAX)]


class OrgLimitsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    org_id: Annotated[str, Field(min_length=1, max_length=64)]


class TierInfo(BaseModel):
    name: str
    rpm: int | None
    tpm: int | None
    tpd: int | None
    default: bool  # AUTH_DEFAULT_RATE_TIER: the tier of keys that have none

    @classmethod
    def build(cls, tier: Any, default_tier: str) -> TierInfo:
        default = tier.name == default_tier
        return cls(name=tier.name, rpm=tier.rpm, tpm=tier.tpm, tpd=tier.tpd, default=default)


class TierList(BaseModel):
    data: list[TierInfo]
    total: int


class DeletedTier(BaseModel):
    name: str
    deleted: bool = True


class LimitSettings(BaseModel):
    """What is set on a key or an organisation: its tier and its overrides."""

    tier: str | None
    rpm: int | None
    tpm: int | None
    tpd: int | None

    @classmethod
    def of(cls, row: Any) -> LimitSettings:
        """From an api_keys or organizations row."""
        return cls(tier=row.rate_tier, rpm=row.rpm_limit, tpm=row.tpm_limit, tpd=row.tpd_limit)

    @classmethod
    def from_limits(cls, limits: RateLimits) -> LimitSettings:
        """Resolved limits as admins read them: 0 (not limited) shown as null."""
        m = as_measures(limits)
        return cls(tier=limits.tier or None, rpm=m.rpm, tpm=m.tpm, tpd=m.tpd)


class KeyLimits(LimitSettings):
    """A key's settings and what they come to (`effective`: null = not limited). The key's
    organisation has limits of its own, enforced as well (`/admin/org/limits`)."""

    id: int
    org_id: str
    effective: LimitSettings


class OrgLimits(LimitSettings):
    org_id: str
    effective: LimitSettings
