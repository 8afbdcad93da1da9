"""OpenTelemetry setup and W3C trace-context propagation over gRPC metadata and Kafka headers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased


def configure_tracing(service: str, *, console: bool = False, sample_ratio: float = 1.0) -> TracerProvider:
    """Install a tracer provider for this process. Exporters are opt-in so the hot path stays cheap."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": service}),
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
    )
    if console:
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


def kafka_headers_from_context(extra: Mapping[str, str] | None = None) -> list[tuple[str, bytes]]:
    """Kafka record headers carrying the current trace context (traceparent/tracestate)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if extra:
        carrier.update(extra)
    return [(k, v.encode()) for k, v in carrier.items()]


def context_from_kafka_headers(headers: Sequence[tuple[str, bytes]] | None) -> otel_context.Context:
    carrier = {k: v.decode(errors="replace") for k, v in (headers or ())}
    return propagate.extract(carrier)


def header_value(headers: Iterable[tuple[str, bytes]] | None, name: str) -> str | None:
    for key, value in headers or ():
        if key == name:
            return value.decode(errors="replace")
    return None


def grpc_metadata_from_context() -> list[tuple[str, str]]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return list(carrier.items())


def context_from_grpc_metadata(metadata: Iterable[tuple[str, str | bytes]] | None) -> otel_context.Context:
    carrier = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in (metadata or ())}
    return propagate.extract(carrier)
