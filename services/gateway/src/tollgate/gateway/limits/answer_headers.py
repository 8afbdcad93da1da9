"""The X-RateLimit-* headers reach every answer of a limited request, whichever route family
renders it (a 200, a stream, or the 429 in the family's own envelope): the outermost middleware
gives each request a holder that the rate gate fills, and adds its headers as the answer starts.

A holder object rather than a context variable's value: the gate runs inside the app, possibly in a
task the framework started, which sees a copy of the context but the same holder."""

from __future__ import annotations

from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tollgate.gateway.limits.headers import rate_limit_headers
from tollgate.gateway.limits.specs import Verdict

_HOLDER: ContextVar[list[tuple[bytes, bytes]] | None] = ContextVar("rate_limit_headers", default=None)


def publish(verdict: Verdict) -> None:
    """Puts the verdict's headers on the current request's answer (a no-op outside a request)."""
    holder = _HOLDER.get()
    if holder is not None:
        holder[:] = [(k.encode(), v.encode()) for k, v in rate_limit_headers(verdict).items()]


class RateLimitHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        holder: list[tuple[bytes, bytes]] = []
        token = _HOLDER.set(holder)

        async def send_with_headers(message: Message) -> None:
            if holder and message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *holder]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            _HOLDER.reset(token)
