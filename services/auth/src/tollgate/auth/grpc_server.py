"""AuthService over gRPC: the gateway's cache-miss path, so one indexed query and no write."""

from __future__ import annotations

import logging

import grpc
from grpc import aio
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.auth.grants.service import ModelGrants
from tollgate.auth.keys.service import KeyService
from tollgate.common.auth_client import Principal
from tollgate.contracts.v1 import auth_pb2, auth_pb2_grpc

log = logging.getLogger(__name__)


class AuthMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.authentications = Counter(
            "auth_authenticate_total", "Authenticate calls by outcome", ["result"], registry=registry
        )


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):  # type: ignore[misc]
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        keys: KeyService,
        metrics: AuthMetrics,
        grants: ModelGrants | None = None,
    ) -> None:
        # `sessions` should be bound to an autocommit engine: lone SELECTs need no BEGIN/ROLLBACK.
        self._sessions = sessions
        self._keys = keys
        self._metrics = metrics
        self._grants = grants or ModelGrants()

    async def Authenticate(  # the generated servicer's method name
        self, request: auth_pb2.AuthenticateRequest, context: aio.ServicerContext
    ) -> auth_pb2.AuthenticateResponse:
        try:
            async with self._sessions() as session:
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
        if principal is None:
            self._metrics.authentications.labels(result.reason or "refused").inc()
            return auth_pb2.AuthenticateResponse(ok=False, reason=result.reason or "unknown_key")
        self._metrics.authentications.labels("ok").inc()
        return auth_pb2.AuthenticateResponse(ok=True, principal=principal_to_proto(principal))


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
    )
