"""AuthService over gRPC: the gateway's cache-miss path, so one indexed query and no write.

The credential is an API key or a signed-in user's access token (a JWT, three dot-separated parts,
which no API key has): each has its own path, so a token is never looked up as a key's hash."""

from __future__ import annotations

import logging

import grpc
from grpc import aio
from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.auth.grants.service import ModelGrants
from tollgate.auth.keys.principal import AuthResult
from tollgate.auth.keys.service import KeyService
from tollgate.auth.sessions.principal import INVALID_TOKEN, TokenPrincipals
from tollgate.auth.sessions.tokens import looks_like_jwt
from tollgate.common.auth_client import Principal
from tollgate.contracts.v1 import auth_pb2, auth_pb2_grpc

log = logging.getLogger(__name__)


class AuthMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.authentications = Counter(
            "auth_authenticate_total", "Authenticate calls by outcome", ["result"], registry=registry
        )
        self.token_authentications = Counter(
            "auth_authenticate_tokens_total",
            "Authenticate calls presenting an access token (JWT), by outcome",
            ["result"],
            registry=registry,
        )


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):  # type: ignore[misc]
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        keys: KeyService,
        metrics: AuthMetrics,
        grants: ModelGrants | None = None,
        tokens: TokenPrincipals | None = None,
    ) -> None:
        # `sessions` should be bound to an autocommit engine: lone SELECTs need no BEGIN/ROLLBACK.
        self._sessions = sessions
        self._keys = keys
        self._metrics = metrics
        self._grants = grants or ModelGrants()
        self._tokens = tokens  # None: access tokens are refused (never tried as keys)

    async def Authenticate(  # the generated servicer's method name
        self, request: auth_pb2.AuthenticateRequest, context: aio.ServicerContext
    ) -> auth_pb2.AuthenticateResponse:
        is_token = looks_like_jwt(request.api_key)
        trace.get_current_span().set_attribute("auth.credential", "access_token" if is_token else "api_key")
        try:
            async with self._sessions() as session:
                if is_token:
                    result = await self._authenticate_token(session, request.api_key)
                else:
                    result = await self._keys.authenticate(session, request.api_key)
                # Only accepted keys pay for the second (primary-key) query: their model grants.
                principal = result.principal
                if principal is not None:
                    principal = await self._grants.restrict(session, principal)
        except SQLAlchemyError as exc:
            # UNAVAILABLE tells the gateway to retry or fail closed; never "unknown_key" for a DB outage.
            self._metrics.authentications.labels("error").inc()
            log.warning("authenticate failed: database unavailable", extra={"error": str(exc)})
            await context.abort(grpc.StatusCode.UNAVAILABLE, "auth database unavailable")
            raise  # unreachable: abort raises
        outcome = "ok" if principal is not None else result.reason or "refused"
        self._metrics.authentications.labels(outcome).inc()
        if is_token:
            self._metrics.token_authentications.labels(outcome).inc()
        if principal is None:
            return auth_pb2.AuthenticateResponse(ok=False, reason=result.reason or "unknown_key")
        return auth_pb2.AuthenticateResponse(ok=True, principal=principal_to_proto(principal))

    async def _authenticate_token(self, session: AsyncSession, token: str) -> AuthResult:
        if self._tokens is None:
            return AuthResult(None, INVALID_TOKEN)
        return await self._tokens.authenticate(session, token)


def principal_to_proto(p: Principal) -> auth_pb2.Principal:
    return auth_pb2.Principal(
        key_id=p.key_id,
        org_id=p.org_id,
        user_id=p.user_id,
        role=p.role,
        group_id=p.group_id,
        permissions=list(p.permissions),
        key_prefix=p.key_prefix,
        expires_at_unix=p.expires_at_unix,
        month_quota_micros=p.month_quota_micros,
        models_restricted=p.models_restricted,
        granted_models=sorted(p.granted_models),
        org_role=p.org_role,
        key_limits=p.key_limits.to_proto(),
        org_limits=p.org_limits.to_proto(),
        chat_recording=p.chat_recording,
        chat_retention_days=p.chat_retention_days,
    )
