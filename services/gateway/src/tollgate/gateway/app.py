"""Builds the gateway's FastAPI app from already-constructed collaborators (see main.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Receive, Scope, Send

from tollgate.common.http import create_app
from tollgate.gateway.catalog import routes as catalog_routes
from tollgate.gateway.catalog.secrets import SecretBox
from tollgate.gateway.catalog.snapshot import CatalogSnapshot
from tollgate.gateway.completions import routes as completion_routes
from tollgate.gateway.completions.service import ChatCompletions
from tollgate.gateway.principals.cache import PrincipalCache
from tollgate.gateway.principals.dependencies import principal_dependency
from tollgate.gateway.proxy import routes as proxy_routes
from tollgate.gateway.proxy.forwarder import Forwarder


class MintRequestIds:
    """Outermost middleware: the request id becomes a billing hold id and a usage event id that
    consumers dedupe on, so the edge mints it. A client's own id is kept as x-client-request-id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            if any(k == b"x-request-id" for k, _ in headers):
                scope = dict(scope)
                scope["headers"] = [
                    (b"x-client-request-id", v) if k == b"x-request-id" else (k, v) for k, v in headers
                ]
        await self.app(scope, receive, send)


@dataclass
class GatewayParts:
    registry: CollectorRegistry
    sessions: async_sessionmaker[AsyncSession]
    snapshot: CatalogSnapshot
    box: SecretBox
    principals: PrincipalCache
    chat: ChatCompletions
    forwarder: Forwarder
    default_max_tokens: int
    trust_client_request_id: bool = False
    health: Callable[[], Awaitable[dict[str, Any]]] | None = None


def build_app(parts: GatewayParts) -> FastAPI:
    app = create_app("gateway", parts.registry, health_check=parts.health)
    current_principal = principal_dependency(parts.principals)
    app.include_router(completion_routes.build_router(parts.chat))
    app.include_router(
        catalog_routes.build_router(
            parts.sessions, parts.snapshot, parts.box, current_principal, parts.default_max_tokens
        )
    )
    app.include_router(proxy_routes.build_router(parts.forwarder))  # last: it is a catch-all
    if not parts.trust_client_request_id:
        app.add_middleware(MintRequestIds)
    return app
