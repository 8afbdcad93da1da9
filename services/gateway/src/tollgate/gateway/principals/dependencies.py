"""FastAPI dependencies resolving the caller's key through the principal cache."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, Request

from tollgate.common.auth_client import Principal, api_key_from_headers
from tollgate.common.errors import Forbidden, Unauthenticated
from tollgate.gateway.principals.cache import PrincipalCache

PrincipalDependency = Callable[[Request], Awaitable[Principal]]


def principal_dependency(cache: PrincipalCache) -> PrincipalDependency:
    async def current_principal(request: Request) -> Principal:
        api_key = api_key_from_headers(request.headers.get("authorization"), request.headers.get("x-api-key"))
        if api_key is None:
            raise Unauthenticated("You didn't provide an API key (Authorization: Bearer <key>).")
        return await cache.get(api_key)

    return current_principal


def admin_dependency(current: PrincipalDependency) -> Callable[[Principal], Awaitable[Principal]]:
    async def require_admin(principal: Principal = Depends(current)) -> Principal:
        if not principal.is_admin:
            raise Forbidden("This route requires an admin API key.", code="admin_required")
        return principal

    return require_admin
