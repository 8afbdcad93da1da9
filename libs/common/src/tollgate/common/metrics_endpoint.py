"""Prometheus metrics on a port of their own, never on a service's public HTTP port.

The public port is what an Ingress or a Service routes to clients; counters of routes, tenants'
refusals and consumer lag are for the platform's Prometheus only. Each process therefore serves
`GET /metrics` on `<P>METRICS_PORT` from a second, tiny ASGI server in the same event loop
(runner.serve starts it first and stops it last, so scrapes answer through a drain). Serving from
the event loop, not a thread, keeps a scrape a plain read of counters between two awaits.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.types import ASGIApp, Receive, Scope, Send

METRICS_PATH = "/metrics"


@dataclass(frozen=True)
class MetricsEndpoint:
    """The registry a process exposes and the port it is scraped on (host: the HTTP host)."""

    registry: CollectorRegistry
    port: int


def metrics_app(registry: CollectorRegistry) -> ASGIApp:
    """`GET /metrics` in Prometheus' text format; anything else 404 (405 for other methods)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] != METRICS_PATH:
            status, body, content_type = 404, b"not found\n", "text/plain; charset=utf-8"
        elif scope["method"] not in ("GET", "HEAD"):
            status, body, content_type = 405, b"method not allowed\n", "text/plain; charset=utf-8"
        else:
            status, body, content_type = 200, generate_latest(registry), CONTENT_TYPE_LATEST
        headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    return app
