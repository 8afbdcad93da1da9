"""One attempt at the upstream for a call's current model: a stream or an answer through its pooled
httpx client, or a non-streamed answer through the lean HTTP/1.1 client when the model has one
(`entry.lean`: plain-http OpenAI-compatible upstreams). An attempt raises AttemptFailed (which
routing retries) or UpstreamRejected (the caller's fault); it never touches the hold."""

from __future__ import annotations

import time
from typing import Any

import httpx
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from tollgate.gateway.catalog.http1 import Http1Pool, UpstreamConnectionError
from tollgate.gateway.catalog.upstream import post_upstream
from tollgate.gateway.metrics import GatewayMetrics
from tollgate.gateway.pipeline.call import Call
from tollgate.gateway.routing.failures import refused, timed_out, unreachable


class Upstream:
    def __init__(self, metrics: GatewayMetrics, timeout_s: float) -> None:
        self._metrics = metrics
        self.timeout_s = timeout_s
        self._timeout = httpx.Timeout(timeout_s)
        self._tracer = trace.get_tracer("tollgate.gateway")
        self._latency: dict[str, Any] = {}  # gateway_upstream_latency_seconds' child by provider

    async def open(self, call: Call, timeout_s: float | None = None) -> httpx.Response:
        """The upstream's 200 response, its body still to be read (a stream)."""
        return await self._send(call, True, timeout_s)

    async def fetch(self, call: Call, timeout_s: float | None = None) -> bytes:
        """The upstream's whole 200 answer."""
        lean = call.entry.lean
        if lean is not None:
            return await self._post(call, lean, self.timeout_s if timeout_s is None else timeout_s)
        return (await self._send(call, False, timeout_s)).content

    async def _send(self, call: Call, stream: bool, timeout_s: float | None) -> httpx.Response:
        url, content, headers = call.upstream  # post_upstream injects the trace context in its span
        return await post_upstream(
            call.entry,
            url,
            content,
            headers,
            stream=stream,
            timeouts=self._timeout if timeout_s is None else httpx.Timeout(timeout_s),
            tracer=self._tracer,
            span_name=call.span or f"upstream.{call.operation.value}",
            metrics=self._metrics,
        )

    async def _post(self, call: Call, lean: Http1Pool, timeout_s: float) -> bytes:
        entry = call.entry
        with self._tracer.start_as_current_span(
            call.span or f"upstream.{call.operation.value}",
            kind=SpanKind.CLIENT,
            attributes={"tollgate.model": entry.name, "tollgate.provider": entry.provider},
        ):
            url, content, headers = call.upstream
            propagate.inject(headers)
            began = time.perf_counter()
            try:
                response = await lean.post(url, content, headers, timeout_s)
            except TimeoutError:
                raise timed_out() from None
            except UpstreamConnectionError:
                raise unreachable() from None
            latency = self._latency.get(entry.provider)
            if latency is None:
                latency = self._latency[entry.provider] = self._metrics.upstream_latency.labels(
                    entry.provider
                )
            latency.observe(time.perf_counter() - began)
        if response.status_code != 200:
            raise refused(response.status_code, response.content)
        return response.content
