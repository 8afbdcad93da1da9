"""FastAPI dependencies: the caller's principal (auth over gRPC) and the request's DB session."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated, Protocol

from fastapi import Depends, Header, Request
from grpc import aio
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.common.auth_client import Principal, api_key_from_headers
from tollgate.common.db import session_scope
from tollgate.common.errors import ServiceUnavailable, Unauthenticated

log = logging.getLogger(__name__)


class Authenticator(Protocol):
    async def authenticate(self, api_key: str) -> Principal: ...


async def current_principal(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Principal:
    api_key = api_key_from_headers(authorization, x_api_key)
    if api_key is None:
        raise Unauthenticated("Missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key'.")
    auth: Authenticator = request.app.state.auth_client
    try:
        return await auth.authenticate(api_key)
    except aio.AioRpcError as exc:
        # Auth being down is our failure, not the caller's: 503, never a misleading 401.
        log.warning("auth unavailable", extra={"grpc_code": str(exc.code())})
        raise ServiceUnavailable("Authentication service is unavailable, retry shortly.") from exc


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    async for session in session_scope(request.app.state.sessions):
        yield session


PrincipalDep = Annotated[Principal, Depends(current_principal)]
SessionDep = Annotated[AsyncSession, Depends(db_session)]
