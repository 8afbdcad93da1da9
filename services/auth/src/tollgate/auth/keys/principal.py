"""Who a stored key stands for, and whether it may be used right now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tollgate.common.auth_client import NO_RATE_LIMITS, Principal, RateLimits

UNKNOWN_KEY = "unknown_key"
REVOKED = "revoked"
EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """The columns Authenticate reads, in one row from one index probe."""

    id: int
    org_id: str
    user_id: str | None
    role: str
    group_id: int | None
    permissions: tuple[str, ...]
    key_prefix: str
    month_quota_micros: int
    expires_at: datetime | None
    revoked_at: datetime | None
    org_role: str | None = None  # the user's membership role in org_id
    # Resolved in the same statement (limits/effective.py): the key's and its organisation's.
    key_limits: RateLimits = NO_RATE_LIMITS
    org_limits: RateLimits = NO_RATE_LIMITS
    # The stored hash and the id of the pepper that made it: a pepper rotation rewrites old ones.
    key_hash: str = ""
    key_pepper_id: str | None = None
    chat_recording: str = "off"  # the organisation's (docs/chat-records.md)
    chat_retention_days: int = 0


@dataclass(frozen=True, slots=True)
class AuthResult:
    principal: Principal | None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.principal is not None


def resolve(record: KeyRecord | None, now: datetime) -> AuthResult:
    """Revocation wins over expiry: a revoked key reports "revoked" even once it has also expired."""
    if record is None:
        return AuthResult(None, UNKNOWN_KEY)
    if record.revoked_at is not None:
        return AuthResult(None, REVOKED)
    if record.expires_at is not None and record.expires_at <= now:
        return AuthResult(None, EXPIRED)
    return AuthResult(to_principal(record))


def to_principal(record: KeyRecord) -> Principal:
    return Principal(
        key_id=record.id,
        org_id=record.org_id,
        user_id=record.user_id or "",
        role=record.role,
        group_id=record.group_id or 0,
        permissions=record.permissions,
        key_prefix=record.key_prefix,
        expires_at_unix=int(record.expires_at.timestamp()) if record.expires_at else 0,
        month_quota_micros=record.month_quota_micros,
        org_role=record.org_role or "",
        key_limits=record.key_limits,
        org_limits=record.org_limits,
        chat_recording=record.chat_recording,
        chat_retention_days=record.chat_retention_days,
    )
