"""Builds the gateway's FastAPI app from already-constructed collaborators (see main.py)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from tollgate.common.errors import TollgateError
from tollgate.common.http import ObservabilityMiddleware, ORJSONResponse, create_app, openai_error_body
from tollgate.gateway.anthropic_door import routes as anthropic_routes
from tollgate.gateway.bots.wiring import FeishuBots
from tollgate.gateway.catalog import model_deletion
from tollgate.gateway.catalog import routes as catalog_routes
from tollgate.gateway.catalog.secrets import SecretBox
from tollgate.gateway.catalog.snapshot import CatalogSnapshot
from tollgate.gateway.completions import routes as completion_routes
from tollgate.gateway.completions.service import ChatCompletions
from tollgate.gateway.console import routes as console_routes
from tollgate.gateway.envelopes import gateway_error_renderer
from tollgate.gateway.limits.answer_headers import AnswerHeaders
from tollgate.gateway.operations import credit_chat, indoxrouter, openai_routes, vector_search
from tollgate.gateway.operations.service import Operations
from tollgate.gateway.principals.cache import PrincipalCache
from tollgate.gateway.principals.dependencies import key_permission_dependency, principal_dependency
from tollgate.gateway.proxy import routes as proxy_routes
from tollgate.gateway.proxy.forwarder import Forwarder
from tollgate.gateway.realtime import routes as realtime_routes
from tollgate.gateway.realtime.session import Realtime
from tollgate.gateway.responses_door import routes as responses_routes
from tollgate.gateway.sloughgpt_door import routes as sloughgpt_routes


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


log = logging.getLogger(__name__)

CHAT_PATH = "/v1/chat/completions"


class _Route:
    """Stands in for the router's match so the HTTP metrics label the fast path by its path."""

    path = CHAT_PATH


class ChatFastPath:
    """POST /v1/chat/completions skips FastAPI's router, dependency and middleware layers, which
    profiles showed at about a fifth of the gateway's CPU per request. It keeps what matters from
    them: request id, server span and HTTP metrics (the same ObservabilityMiddleware) and OpenAI's
    error envelope. Every other request goes to the FastAPI app unchanged."""

    def __init__(self, app: FastAPI, chat: ChatCompletions) -> None:
        self.app = app
        self.chat = chat
        self.observed = ObservabilityMiddleware(
            self._chat, metrics=app.state.http_metrics, tracer_name="tollgate.gateway"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == CHAT_PATH and scope["method"] == "POST":
            scope["route"] = _Route
            await self.observed(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            # the handler checks the key's `write` permission right after resolving it
            response = await self.chat.handle(Request(scope, receive))
        except TollgateError as exc:
            body = openai_error_body(exc.message, exc.error_type, exc.code, exc.param)
            response = ORJSONResponse(body, status_code=exc.status_code)
        except Exception:
            log.exception("chat completion failed")
            body = openai_error_body("The server had an error processing your request.", "api_error", None)
            response = ORJSONResponse(body, status_code=500)
        await response(scope, receive, send)


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
    operations: Operations
    credit_chat_max_tokens: int = 150
    sloughgpt_default_model: str = ""
    version: str = "0"
    trust_client_request_id: bool = False
    health: Callable[[], Awaitable[dict[str, Any]]] | None = None
    realtime: Realtime | None = None  # /ws and the maintenance notice (realtime/)
    bots: FeishuBots | None = None  # /admin/bot/feishu/* and /bot/feishu/{id}/events (bots/)


def build_app(parts: GatewayParts) -> ASGIApp:
    app = create_app(
        "gateway", parts.registry, error_renderer=gateway_error_renderer, health_check=parts.health
    )
    current_principal = principal_dependency(parts.principals)
    # still routed (and so in the OpenAPI schema); ChatFastPath answers it before the router does
    app.include_router(completion_routes.build_router(parts.chat))
    app.include_router(
        catalog_routes.build_router(
            parts.sessions, parts.snapshot, parts.box, current_principal, parts.default_max_tokens
        )
    )
    # /v1/* operations resolve the key themselves: the key's permission is checked first (403)
    key_permission = Depends(key_permission_dependency(parts.principals))
    app.include_router(openai_routes.build_router(parts.operations), dependencies=[key_permission])
    app.include_router(credit_chat.build_router(parts.operations, parts.credit_chat_max_tokens))
    app.include_router(indoxrouter.build_router(parts.operations, parts.version))
    app.include_router(anthropic_routes.build_router(parts.operations))  # Anthropic's Messages API
    app.include_router(responses_routes.build_router(parts.operations))  # OpenAI's Responses API
    app.include_router(
        sloughgpt_routes.build_router(parts.operations, parts.sloughgpt_default_model, parts.health)
    )
    # POST /search/vector: text embedded (billed) here, the search forwarded to training
    app.include_router(vector_search.build_router(parts.operations, parts.forwarder, "all-minilm-l6-v2"))
    # DELETE /v1/models/{model}: answered here for catalog models, forwarded to training otherwise
    app.include_router(model_deletion.build_router(parts.snapshot, current_principal, parts.forwarder))
    if parts.realtime is not None:  # before the proxy: it would forward /admin/system/* to auth
        app.include_router(realtime_routes.build_router(parts.realtime, current_principal))
    console_routes.mount(app)  # the web console's static files (docs/console.md), before the catch-all
    if parts.bots is not None:  # before the proxy: it would forward /admin/bot/* to auth
        app.include_router(parts.bots.router(current_principal))
    app.include_router(proxy_routes.build_router(parts.forwarder))  # last: it is a catch-all
    # X-RateLimit-* on every answer of a limited request, whichever family renders it (limits/), and
    # SloughGPT's API-Version echo
    served: ASGIApp = AnswerHeaders(ChatFastPath(app, parts.chat))
    return served if parts.trust_client_request_id else MintRequestIds(served)
