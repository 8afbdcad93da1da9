"""FastAPI dependencies resolving the caller's key through the principal cache."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, Request

from tollgate.common.auth_client import Principal, api_key_from_headers
from tollgate.common.errors import Forbidden, Unauthenticated
from tollgate.gateway.principals.cache import PrincipalCache
from tollgate.gateway.principals.permissions import ensure_key_permitted, ensure_permitted

PrincipalDependency = Callable[[Request], Awaitable[Principal]]


def principal_dependency(cache: PrincipalCache) -> PrincipalDependency:
    async def current_principal(request: Request) -> Principal:
        api_key = api_key_from_headers(request.headers.get("authorization"), request.headers.get("x-api-key"))
        if api_key is None:
            raise Unauthenticated("You didn't provide an API key (Authorization: Bearer <key>).")
        principal = await cache.get(api_key)
        ensure_permitted(principal, request.method)  # read / write / delete by method, before any work
        return principal

    return current_principal


def key_permission_dependency(cache: PrincipalCache) -> Callable[[Request], Awaitable[None]]:
    """For routers whose handlers resolve the key themselves: checks the key's permission for the
    request's method first (raising in the route's own envelope), and leaves a missing or unknown
    key to the handler, which answers it as it always has."""

    async def check_key_permission(request: Request) -> None:
        await ensure_key_permitted(cache, request.headers, request.method)

    return check_key_permission


def admin_dependency(current: PrincipalDependency) -> Callable[[Principal], Awaitable[Principal]]:
    async def require_admin(principal: Principal = Depends(current)) -> Principal:
        if not principal.is_admin:
            raise Forbidden("This route requires an admin API key.", code="admin_required")
        return principal

    return require_admin
