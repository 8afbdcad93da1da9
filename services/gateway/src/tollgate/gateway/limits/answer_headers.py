"""Headers that must reach every answer of a request, whichever route family renders it (a 200, a
stream, or an error in the family's own envelope): the X-RateLimit-* headers of a limited request,
and SloughGPT's `API-Version` echo. The outermost middleware gives each request a holder that the
rate gate (or a route) fills, and adds its headers as the answer starts.

A holder object rather than a context variable's value: the gate runs inside the app, possibly in a
task the framework started, which sees a copy of the context but the same holder."""

from __future__ import annotations

from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tollgate.gateway.limits.headers import rate_limit_headers
from tollgate.gateway.limits.specs import Verdict

_RATE_HEADERS = frozenset(
    {
        b"x-ratelimit-limit",
        b"x-ratelimit-remaining",
        b"x-ratelimit-reset",
        b"x-ratelimit-retry-after",
        b"retry-after",
    }
)
_HOLDER: ContextVar[dict[bytes, bytes] | None] = ContextVar("answer_headers", default=None)


def publish(verdict: Verdict) -> None:
    """Puts the verdict's headers on the current request's answer (a no-op outside a request); a
    later verdict of the same request (a batch's next call) replaces an earlier one's."""
    holder = _HOLDER.get()
    if holder is not None:
        for name in [n for n in holder if n in _RATE_HEADERS]:
            del holder[name]
        holder.update((k.encode(), v.encode()) for k, v in rate_limit_headers(verdict).items())


def add_answer_header(name: str, value: str) -> None:
    """One more header on the current request's answer, however it ends (a no-op outside a request)."""
    holder = _HOLDER.get()
    if holder is not None:
        holder[name.lower().encode()] = value.encode()


class AnswerHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        holder: dict[bytes, bytes] = {}
        token = _HOLDER.set(holder)

        async def send_with_headers(message: Message) -> None:
            if holder and message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *holder.items()]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            _HOLDER.reset(token)
