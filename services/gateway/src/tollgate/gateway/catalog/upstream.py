"""One POST to a model's upstream over its pooled httpx client, for every operation: the client span
(with the trace context injected), the latency metric, and what a failure means.

A timeout, an unreachable upstream or a failing answer raise AttemptFailed (routing/failures.py),
which the caller's routing retries or turns into the 502 / 504 the caller sees; a refusal the caller
can fix (400 / 413 / 422) raises UpstreamRejected with the provider's own body, for the route to pass
on in its envelope. Nothing here touches the hold: one request may make several attempts.
"""

from __future__ import annotations

import time

import httpx
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Tracer

from tollgate.gateway.catalog.snapshot import CatalogEntry
from tollgate.gateway.metrics import GatewayMetrics
from tollgate.gateway.routing.failures import UpstreamRejected, refused, timed_out, unreachable

__all__ = ["UpstreamRejected", "post_upstream"]


async def post_upstream(
    entry: CatalogEntry,
    url: str,
    content: bytes,
    headers: dict[str, str],
    *,
    stream: bool,
    timeouts: httpx.Timeout,
    tracer: Tracer,
    span_name: str,
    metrics: GatewayMetrics,
) -> httpx.Response:
    """The upstream's 200 response (its body still to be read when `stream`)."""
    attributes = {"tollgate.model": entry.name, "tollgate.provider": entry.provider}
    with tracer.start_as_current_span(span_name, kind=SpanKind.CLIENT, attributes=attributes):
        propagate.inject(headers)
        began = time.perf_counter()
        try:
            request = entry.client.build_request(
                "POST", url, content=content, headers=headers, timeout=timeouts
            )
            response = await entry.client.send(request, stream=stream)
        except httpx.TimeoutException:
            raise timed_out() from None
        except httpx.HTTPError:
            raise unreachable() from None
        metrics.upstream_latency.labels(entry.provider).observe(time.perf_counter() - began)
    if response.status_code == 200:
        return response
    try:
        body = await response.aread()
    except httpx.HTTPError:
        body = b""
    finally:
        await response.aclose()
    raise refused(response.status_code, body)
