"""FastAPI dependencies: the caller's principal (auth's Authenticate over gRPC, with the key
permission its method needs) and the request's DB session (committed at the end of the request)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated, Protocol

from fastapi import Depends, Header, Request
from grpc import aio
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.common.auth_client import Principal, api_key_from_headers, permission_for_method
from tollgate.common.db import session_scope
from tollgate.common.errors import Forbidden, ServiceUnavailable, Unauthenticated

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
        principal = await auth.authenticate(api_key)
    except aio.AioRpcError as exc:
        log.warning("auth unavailable", extra={"grpc_code": str(exc.code())})
        raise ServiceUnavailable("Authentication service is unavailable, retry shortly.") from exc
    needed = permission_for_method(request.method)
    if not principal.may(needed):
        raise Forbidden(f"This API key lacks the '{needed}' permission.", code="permission_denied")
    return principal


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    async for session in session_scope(request.app.state.sessions):
        yield session


PrincipalDep = Annotated[Principal, Depends(current_principal)]
SessionDep = Annotated[AsyncSession, Depends(db_session)]
