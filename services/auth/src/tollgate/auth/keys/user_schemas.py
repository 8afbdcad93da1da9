"""Bodies of the self-service key routes: /auth/api-keys (SloughGPT) and /api/keys (the credit chat API)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from tollgate.auth.keys.schemas import Name

Permission = Literal["read", "write", "delete"]
ALL_PERMISSIONS: tuple[Permission, ...] = ("read", "write", "delete")  # the column's default too
MAX_EXPIRES_DAYS = 3650


def _canonical(permissions: list[Permission]) -> list[Permission]:
    # Stored once each and in one order, so equal permission sets compare and display equally.
    return [p for p in ALL_PERMISSIONS if p in permissions]


class _Body(BaseModel):
    # An unknown field is most likely a typo ("expire_days") that would otherwise be silently ignored.
    model_config = ConfigDict(extra="forbid")


class CreateUserKeyRequest(_Body):
    """SloughGPT. A key that may do nothing is a mistake, so an empty permission list is refused."""

    name: Name
    permissions: Annotated[
        list[Permission], Field(min_length=1, max_length=10), AfterValidator(_canonical)
    ] = list(ALL_PERMISSIONS)
    expires_days: Annotated[int, Field(strict=True, ge=1, le=MAX_EXPIRES_DAYS)] | None = None


class CreatedUserKey(BaseModel):
    id: int
    api_key: str  # shown once, at creation; only its keyed hash is stored
    key_prefix: str
    name: str
    permissions: list[str]
    org_id: str
    expires_at: datetime | None
    created_at: datetime


class UserKeyInfo(BaseModel):
    """A key as its owner sees it afterwards: everything but the secret."""

    id: int
    key_prefix: str
    name: str
    permissions: list[str]
    org_id: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked: bool
    revoked_at: datetime | None


class UserKeyList(BaseModel):
    data: list[UserKeyInfo]
    total: int


class GenerateKeyRequest(_Body):
    """The credit chat API: a name only; the key gets every permission and no expiry."""

    name: Name


class GeneratedKey(BaseModel):
    id: int
    key: str  # shown once
    name: str
    prefix: str
    created_at: datetime


class KeySummary(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked: bool


class KeySummaryList(BaseModel):
    keys: list[KeySummary]


class RevokedKey(BaseModel):
    id: int
    revoked: Literal[True] = True
