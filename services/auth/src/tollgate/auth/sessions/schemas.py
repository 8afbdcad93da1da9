"""Request and response bodies of /auth/* (SloughGPT and IndoxRouter)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

MIN_PASSWORD_LENGTH = 8
# Bounds the work one request can ask of argon2 (it hashes whatever it is given).
MAX_PASSWORD_LENGTH = 1024


def _lower(value: str) -> str:
    return value.lower()


# Deliberately loose (one @, a dot in the domain, no spaces): the address is proven by use, not
# by a regex. Stored lowercased so one mailbox is one account.
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=3,
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        strict=True,
    ),
    AfterValidator(_lower),
]
Password = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PASSWORD_LENGTH, strict=True)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, strict=True)]


class _Body(BaseModel):
    # An unknown field is most likely a typo that would otherwise be silently ignored.
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(_Body):
    email: Email
    password: Password
    name: Name


class LoginRequest(_Body):
    email: Email
    password: Password


class RefreshRequest(_Body):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=512, strict=True)] | None = None


OrgId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, strict=True)]


class SwitchOrganizationRequest(_Body):
    organization_id: OrgId


class TokenRequest(BaseModel):
    """OAuth2's password grant as IndoxRouter shows it; clients also send client_id, scope and the
    like, which are ignored."""

    model_config = ConfigDict(extra="ignore")

    username: Email
    password: Password
    grant_type: Literal["password"] | None = None


class AccessToken(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds until the access token expires")


class TokenPair(AccessToken):
    refresh_token: str


class UserOut(BaseModel):
    id: str
    email: str | None
    name: str
    role: str
    org_id: str
    created_at: datetime


class Registered(TokenPair):
    user: UserOut


class OrganizationOut(BaseModel):
    id: str
    name: str
    personal: bool
    role: str | None = Field(description="the caller's role in it: owner, admin, member")


class MeKey(BaseModel):
    """The API key the caller presented (not its secret): what it may do, so a client can tell an
    admin key from a user's key without probing routes that would refuse it."""

    id: int
    key_prefix: str
    role: str  # user | admin (a platform admin key)
    permissions: list[str]


class Me(BaseModel):
    user: UserOut | None  # None for an organisation's service key (the bootstrap admin key)
    organization: OrganizationOut | None
    auth: Literal["access_token", "api_key"]
    key: MeKey | None = None  # set when the caller is an API key


class LoggedOut(BaseModel):
    logged_out: bool = True
