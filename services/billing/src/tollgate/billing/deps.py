"""FastAPI dependencies: the collaborators main.py put on app.state, and the calling principal."""

from __future__ import annotations

from fastapi import Depends, Header, Request
from grpc import aio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.billing.holds.service import HoldService
from tollgate.billing.metrics import BillingMetrics
from tollgate.common.auth_client import AuthClient, Principal, api_key_from_headers
from tollgate.common.errors import Forbidden, NotFound, ServiceUnavailable, Unauthenticated


def get_sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    return sessions


def get_holds(request: Request) -> HoldService:
    holds: HoldService = request.app.state.holds
    return holds


def get_metrics(request: Request) -> BillingMetrics:
    metrics: BillingMetrics = request.app.state.metrics
    return metrics


def get_auth(request: Request) -> AuthClient:
    auth: AuthClient = request.app.state.auth
    return auth


async def authenticate(auth: AuthClient, api_key: str) -> Principal:
    """auth's verdict on a key; auth being unreachable is a 503, not a 401."""
    try:
        return await auth.authenticate(api_key)
    except aio.AioRpcError as exc:
        raise ServiceUnavailable("The auth service is unavailable; retry shortly.") from exc


async def key_in_body(auth: AuthClient, api_key: str) -> Principal:
    """The API key an admin route names in its body (the Bedrock-style gateway's `api_key`): 404 when
    no active key matches. Only API keys: a signed-in user's access token names a session, not a key."""
    try:
        target = await authenticate(auth, api_key)
    except Unauthenticated as exc:
        raise NotFound(
            "No active API key matches api_key.", param="api_key", code="api_key_not_found"
        ) from exc
    if not target.key_id:
        raise NotFound("No active API key matches api_key.", param="api_key", code="api_key_not_found")
    return target


async def current_principal(
    authorization: str | None = Header(default=None),
    x_api_key: str | None = Header(default=None),
    auth: AuthClient = Depends(get_auth),
) -> Principal:
    api_key = api_key_from_headers(authorization, x_api_key)
    if api_key is None:
        raise Unauthenticated(
            "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.", code="missing_api_key"
        )
    return await authenticate(auth, api_key)


async def admin_principal(principal: Principal = Depends(current_principal)) -> Principal:
    if not principal.is_admin:
        raise Forbidden("This route needs an admin API key.", code="admin_required")
    return principal
