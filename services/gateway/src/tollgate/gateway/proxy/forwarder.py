"""Reverse proxy for the other services' public REST, so clients need only the gateway's port."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from opentelemetry import propagate
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tollgate.common.errors import NotFound, ServiceUnavailable, UpstreamTimeout

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "x-request-id",
        "traceparent",
        "tracestate",
    }
)
# the caller's address is set by the gateway itself (see Forwarder.forward)
_NOT_FORWARDED = HOP_BY_HOP | {"x-forwarded-for", "x-real-ip", "forwarded"}


@dataclass(frozen=True, slots=True)
class Rule:
    service: str
    path: str
    exact: bool = False

    def matches(self, path: str) -> bool:
        if self.exact:
            return path == self.path
        return path == self.path.rstrip("/") or path.startswith(self.path)


# First match wins: billing's key recharge sits under auth's /admin/api-key/ prefix.
RULES: tuple[Rule, ...] = (
    Rule("billing", "/admin/api-key/recharge", exact=True),
    Rule("billing", "/admin/payment/"),
    Rule("billing", "/v1/credits"),
    Rule("billing", "/cost/"),
    Rule("auth", "/admin/api-key/"),
    Rule("auth", "/admin/group/"),
    Rule("auth", "/admin/rate-tier/"),  # rate limit tiers; a key's and an organisation's limits
    Rule("auth", "/admin/org/"),
    Rule("auth", "/admin/audit/"),
    Rule("auth", "/auth/"),
    Rule("auth", "/api/guard/"),
    Rule("auth", "/api/keys/"),  # the credit chat API: a signed-in user's keys (and /api/keys itself)
    Rule("analytics", "/analytics/"),
    Rule("analytics", "/admin/session/"),
    Rule("analytics", "/admin/thread/"),
    Rule("analytics", "/user/"),
    Rule("training", "/training/"),
    Rule("training", "/fine-tuning/"),
    # SloughGPT's model registry; /models/{provider}/{model} is IndoxRouter's, answered by the
    # gateway's own route before this catch-all is reached (docs/billing.md "Seed routes")
    Rule("training", "/models/"),
    Rule("training", "/v1/files/"),  # OpenAI Files API (fine-tuning data), /v1/files itself too
    Rule("training", "/v1/fine_tuning/"),
    Rule("training", "/vectors/"),  # vector collections (docs/vectors.md)
    Rule("training", "/search/vector", exact=True),  # SloughGPT's search (text is embedded first)
)


def route_for(path: str) -> str | None:
    for rule in RULES:
        if rule.matches(path):
            return rule.service
    return None


class Forwarder:
    def __init__(
        self, targets: Mapping[str, str], client: httpx.AsyncClient, timeout_s: float = 30.0
    ) -> None:
        self._targets = {name: url.rstrip("/") for name, url in targets.items()}
        self._client = client
        self._timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 3.0))

    async def forward(
        self, request: Request, service: str | None = None, content: bytes | None = None
    ) -> Response:
        """To `service`, or to the owner `RULES` give the path (a gateway route that decided to
        forward names its service itself)."""
        path = request.url.path
        service = service or route_for(path)
        if service is None or service not in self._targets:
            raise NotFound(f"Unknown route: {request.method} {path}", code="not_found")
        url = self._targets[service] + request.scope.get("raw_path", path.encode()).decode("latin-1")
        query = request.url.query
        if query:
            url = f"{url}?{query}"
        # The gateway is the edge: the services behind it learn the caller's address from us (auth
        # rate-limits logins per IP), never from headers the caller chose to send.
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED]
        headers.append(("x-request-id", request.scope["state"]["request_id"]))
        if request.client is not None:
            headers.append(("x-forwarded-for", request.client.host))
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        headers.extend(carrier.items())
        outgoing = self._client.build_request(
            request.method,
            url,
            headers=headers,
            content=await request.body() if content is None else content,
            timeout=self._timeout,
        )
        try:
            upstream = await self._client.send(outgoing, stream=True)
        except httpx.TimeoutException:
            raise UpstreamTimeout(f"The {service} service did not answer in time.") from None
        except httpx.HTTPError:
            raise ServiceUnavailable(
                f"The {service} service is unavailable.", code="service_unavailable"
            ) from None
        response = StreamingResponse(
            upstream.aiter_raw(), status_code=upstream.status_code, background=BackgroundTask(upstream.aclose)
        )
        # Raw header list: keeps repeated headers (set-cookie) and the original encoding/length.
        response.raw_headers = [
            (k, v)
            for k, v in upstream.headers.raw
            if k.decode("latin-1").lower() not in HOP_BY_HOP or k.lower() == b"content-length"
        ]
        return response

    async def close(self) -> None:
        await self._client.aclose()
