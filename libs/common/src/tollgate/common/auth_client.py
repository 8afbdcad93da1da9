"""Client for auth's gRPC Authenticate: services use it to turn an API key (or a signed-in user's
access token, whose principal has key_id 0) into a principal."""

from __future__ import annotations

from dataclasses import dataclass

from grpc import aio

from tollgate.common.errors import Unauthenticated
from tollgate.contracts.v1 import auth_pb2, auth_pb2_grpc


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Requests per minute, tokens per minute and tokens per day for one subject (a key or an
    organisation), as auth resolved them: its own override where set, else its tier's. 0 = not
    limited; `tier` names the tier they start from ("" when none). See docs/limits.md."""

    tier: str = ""
    rpm: int = 0
    tpm: int = 0
    tpd: int = 0

    @property
    def limited(self) -> bool:
        return bool(self.rpm or self.tpm or self.tpd)

    @classmethod
    def from_proto(cls, p: auth_pb2.RateLimits) -> RateLimits:
        return cls(tier=p.tier, rpm=p.rpm, tpm=p.tpm, tpd=p.tpd)

    def to_proto(self) -> auth_pb2.RateLimits:
        return auth_pb2.RateLimits(tier=self.tier, rpm=self.rpm, tpm=self.tpm, tpd=self.tpd)


NO_RATE_LIMITS = RateLimits()


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: int
    org_id: str
    user_id: str
    role: str
    group_id: int
    permissions: tuple[str, ...]
    key_prefix: str
    expires_at_unix: int
    month_quota_micros: int
    # Model authorisation (auth's model grants): unrestricted keys may call every model.
    models_restricted: bool = False
    granted_models: frozenset[str] = frozenset()
    # The key's user's role in org_id: "owner" | "admin" | "member", or "" for a user-less key
    # (the bootstrap admin key) or a user who is no longer a member. Personal organisations
    # included: their user is their owner.
    org_role: str = ""
    # Rate limits: the key's and its organisation's are separate limits, both enforced.
    key_limits: RateLimits = NO_RATE_LIMITS
    org_limits: RateLimits = NO_RATE_LIMITS
    # Chat records (docs/chat-records.md): the organisation's recording mode, "off" | "metadata" |
    # "full", and how many days analytics keeps the records.
    chat_recording: str = "off"
    chat_retention_days: int = 0

    @property
    def records_chats(self) -> bool:
        return self.chat_recording in ("metadata", "full")

    @property
    def is_admin(self) -> bool:
        """A platform admin key (the Bedrock-style gateway's role "admin"): administers every organisation."""
        return self.role == "admin"

    @property
    def is_org_admin(self) -> bool:
        """An owner or admin of org_id: administers that organisation only."""
        return self.org_role in ("owner", "admin")

    def may(self, permission: str) -> bool:
        """Key permissions (SloughGPT: read / write / delete). Every stored key carries an explicit
        list (the column's default is all three), so an empty list grants nothing."""
        return permission in self.permissions

    def may_use(self, model: str) -> bool:
        """Whether this key may call `model` (the catalog's public name)."""
        return not self.models_restricted or model in self.granted_models

    @classmethod
    def from_proto(cls, p: auth_pb2.Principal) -> Principal:
        return cls(
            key_id=p.key_id,
            org_id=p.org_id,
            user_id=p.user_id,
            role=p.role,
            group_id=p.group_id,
            permissions=tuple(p.permissions),
            key_prefix=p.key_prefix,
            expires_at_unix=p.expires_at_unix,
            month_quota_micros=p.month_quota_micros,
            models_restricted=p.models_restricted,
            granted_models=frozenset(p.granted_models),
            org_role=p.org_role,
            key_limits=RateLimits.from_proto(p.key_limits),
            org_limits=RateLimits.from_proto(p.org_limits),
            chat_recording=p.chat_recording or "off",
            chat_retention_days=p.chat_retention_days,
        )


READ = "read"
WRITE = "write"
DELETE = "delete"
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def permission_for_method(method: str) -> str:
    """The key permission an HTTP method needs: reads need `read`, DELETE needs `delete`, anything
    else (POST, PUT, PATCH; calling a model included, as in OpenAI's key permissions) `write`."""
    method = method.upper()
    if method in _READ_METHODS:
        return READ
    if method == "DELETE":
        return DELETE
    return WRITE


def api_key_from_headers(authorization: str | None, x_api_key: str | None) -> str | None:
    """`Authorization: Bearer <key>` or `X-API-Key: <key>` (SloughGPT)."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    if x_api_key and x_api_key.strip():
        return x_api_key.strip()
    return None


class AuthClient:
    def __init__(self, channel: aio.Channel, timeout_s: float = 2.0) -> None:
        self._stub = auth_pb2_grpc.AuthServiceStub(channel)
        self._timeout = timeout_s

    async def authenticate(self, api_key: str) -> Principal:
        """Raises Unauthenticated when the key is unknown, revoked or expired."""
        reply = await self._stub.Authenticate(
            auth_pb2.AuthenticateRequest(api_key=api_key), timeout=self._timeout
        )
        if not reply.ok:
            # A signed-in user's access token (a JWT: three dot-separated parts) is refused in its words.
            reasons = _TOKEN_REASONS if api_key.count(".") == 2 else _REASONS
            raise Unauthenticated(reasons.get(reply.reason, "Invalid API key."), code="invalid_api_key")
        return Principal.from_proto(reply.principal)


_REASONS = {
    "unknown_key": "Incorrect API key provided.",
    "revoked": "This API key has been revoked.",
    "expired": "This API key has expired.",
}
_TOKEN_REASONS = {
    "invalid_token": "Invalid access token.",
    "revoked": "This session has ended; sign in again.",
    "expired": "The access token has expired.",
}
