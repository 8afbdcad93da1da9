"""gRPC plumbing: aio server and channels that carry the W3C trace context in metadata."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc import aio
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from tollgate.common.telemetry import context_from_grpc_metadata, grpc_metadata_from_context

_CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 30000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.so_reuseport", 0),
]


class _ClientTraceInterceptor(aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Adds traceparent to outgoing metadata when a span is active."""

    async def intercept_unary_unary(
        self, continuation: Callable[..., Awaitable[Any]], client_call_details: Any, request: Any
    ) -> Any:
        if trace.get_current_span().get_span_context().is_valid:
            metadata = list(client_call_details.metadata or [])
            metadata.extend(grpc_metadata_from_context())
            client_call_details = aio.ClientCallDetails(
                client_call_details.method,
                client_call_details.timeout,
                metadata,
                client_call_details.credentials,
                client_call_details.wait_for_ready,
            )
        return await continuation(client_call_details, request)


class _ServerTraceInterceptor(aio.ServerInterceptor):  # type: ignore[misc]
    """Starts a server span per call, parented on the caller's trace context."""

    def __init__(self, service: str) -> None:
        self.tracer = trace.get_tracer(f"tollgate.{service}.grpc")

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: Any
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method
        parent = context_from_grpc_metadata(handler_call_details.invocation_metadata)
        inner = handler.unary_unary
        tracer = self.tracer

        async def traced(request: Any, context: Any) -> Any:
            token = otel_context.attach(parent)
            try:
                with tracer.start_as_current_span(method, kind=SpanKind.SERVER):
                    return await inner(request, context)
            finally:
                otel_context.detach(token)

        return grpc.unary_unary_rpc_method_handler(
            traced,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def make_server(service: str) -> aio.Server:
    return aio.server(interceptors=[_ServerTraceInterceptor(service)], options=_CHANNEL_OPTIONS)


def make_channel(target: str) -> aio.Channel:
    return aio.insecure_channel(target, options=_CHANNEL_OPTIONS, interceptors=[_ClientTraceInterceptor()])
