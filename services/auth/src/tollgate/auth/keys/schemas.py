"""Request and response bodies of the admin api-key routes (the Bedrock-style gateway)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from tollgate.auth.limits.schemas import LimitSettings
from tollgate.common.money import micros_to_credits

Role = Literal["user", "admin"]
# Strict: a number where a name belongs is a client bug, not something to coerce.
# No NUL: PostgreSQL text cannot hold it, so it must be a 400 here rather than a 500 at the insert.
Name = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=100, strict=True, pattern=r"^[^\x00]*$"
    ),
]
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254, strict=True)]
GroupId = Annotated[int, Field(strict=True, ge=1, le=2_147_483_647)]
KeyId = Annotated[int, Field(strict=True, ge=1, le=9_223_372_036_854_775_807)]
# Credits as a JSON number; converted once to integer micros. The cap keeps micros inside a bigint.
Credits = Annotated[float, Field(strict=True, ge=0, le=1_000_000_000_000, allow_inf_nan=False)]


class _Body(BaseModel):
    # An unknown field is most likely a typo ("month_qouta") that would otherwise be silently ignored.
    model_config = ConfigDict(extra="forbid")


class ApplyKeyRequest(_Body):
    name: Name
    group_id: GroupId | None = None
    role: Role = "user"
    email: Email | None = None
    month_quota: Credits | None = None


class UpdateKeyRequest(_Body):
    """Fields left out stay as they are; `group_id: null` removes the key from its group."""

    id: KeyId
    name: Name | None = None
    month_quota: Credits | None = None
    group_id: GroupId | None = None
    role: Role | None = None


class DeleteKeyRequest(_Body):
    id: KeyId


def _blank_to_none(value: Any) -> Any:
    # The Bedrock-style gateway sends every filter, empty ones included:
    # `?q=&name=&group_id=&role=&limit=10&offset=`.
    return None if isinstance(value, str) and not value.strip() else value


def _blank_to(default: int) -> Any:
    return BeforeValidator(lambda v: default if _blank_to_none(v) is None else v)


class ListKeysQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    q: Annotated[Annotated[str, Field(max_length=100)] | None, BeforeValidator(_blank_to_none)] = None
    name: Annotated[Annotated[str, Field(max_length=100)] | None, BeforeValidator(_blank_to_none)] = None
    group_id: Annotated[
        Annotated[int, Field(ge=1, le=2_147_483_647)] | None, BeforeValidator(_blank_to_none)
    ] = None
    role: Annotated[Role | None, BeforeValidator(_blank_to_none)] = None
    limit: Annotated[int, _blank_to(10), Field(ge=1, le=100)] = 10
    offset: Annotated[int, _blank_to(0), Field(ge=0)] = 0


class KeyInfo(BaseModel):
    """A key as admins see it: everything but the key itself, which exists only in IssuedKey."""

    id: int
    key_prefix: str
    name: str
    role: str
    group_id: int | None
    email: str | None
    month_quota: float  # credits, for display; stored as integer micros
    month_quota_micros: int
    permissions: list[str]
    user_id: str | None
    org_id: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    # Rate limits set on the key: its tier and overrides (null: none / the tier's); what they come
    # to, and the organisation's own limits, at /admin/api-key/limits and /admin/org/limits.
    limits: LimitSettings

    @classmethod
    def build(cls, key: Any, email: str | None) -> KeyInfo:
        return cls(
            id=key.id,
            key_prefix=key.key_prefix,
            name=key.name,
            role=key.role,
            group_id=key.group_id,
            email=email,
            month_quota=micros_to_credits(key.month_quota_micros),
            month_quota_micros=key.month_quota_micros,
            permissions=list(key.permissions),
            user_id=key.user_id,
            org_id=key.org_id,
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            expires_at=key.expires_at,
            limits=LimitSettings.of(key),
        )


class IssuedKey(KeyInfo):
    api_key: str  # shown once, at creation; only its hash is kept


class KeyPage(BaseModel):
    data: list[KeyInfo]
    total: int
    limit: int
    offset: int


class DeletedKey(BaseModel):
    id: int
    deleted: bool = True
