"""One POST to a model's upstream over its pooled httpx client, for every operation: the client span
(with the trace context injected), the latency metric, and what a failure means for the caller.

A timeout is a 504 and an unreachable or failing upstream a 502; in every failed case `on_failure`
runs first (it releases the hold and records the request as not charged). A refusal the caller can
fix (PASS_THROUGH_STATUSES) comes back as UpstreamRejected with the provider's own body, for the
route to pass on in its envelope.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import httpx
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Tracer

from tollgate.common.errors import UpstreamError, UpstreamTimeout
from tollgate.gateway.catalog.snapshot import CatalogEntry
from tollgate.gateway.metrics import GatewayMetrics

# Upstream client errors the caller can fix pass through; anything else is our provider's fault.
PASS_THROUGH_STATUSES = frozenset({400, 413, 422, 429})

OnFailure = Callable[[str], Awaitable[None]]  # called with "upstream_timeout" | "upstream_error"


class UpstreamRejected(Exception):
    def __init__(self, status_code: int, body: bytes) -> None:
        super().__init__(status_code)
        self.status_code = status_code
        self.body = body


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
    on_failure: OnFailure,
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
            await on_failure("upstream_timeout")
            raise UpstreamTimeout("The upstream model did not answer in time.") from None
        except httpx.HTTPError:
            await on_failure("upstream_error")
            raise UpstreamError("The upstream model could not be reached.") from None
        metrics.upstream_latency.labels(entry.provider).observe(time.perf_counter() - began)
    if response.status_code == 200:
        return response
    body = await response.aread()
    await response.aclose()
    await on_failure("upstream_error")
    if response.status_code in PASS_THROUGH_STATUSES:
        raise UpstreamRejected(response.status_code, body)
    raise UpstreamError(f"The upstream model failed (HTTP {response.status_code}).")
