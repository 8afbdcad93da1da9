"""OpenTelemetry setup, client instrumentation and W3C trace-context propagation over gRPC metadata
and Kafka headers. Where spans go and which are kept comes from the OTEL_* variables (trace_export)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Tracer

from tollgate.common.trace_export import exporter_names, make_sampler, span_exporters

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass(frozen=True)
class Tracing:
    """This process's tracer provider, and whether its spans leave the process.

    Client spans for PostgreSQL and Redis are added only when they do (`exporting`): an instrumented
    client pays for a span on every statement or command, which is waste when nothing is sent.
    OTEL_PYTHON_DISABLED_INSTRUMENTATIONS (e.g. "redis" or "sqlalchemy,redis") turns one off."""

    provider: TracerProvider
    exporting: bool
    disabled: frozenset[str] = frozenset()

    def instrument_engine(self, engine: AsyncEngine) -> None:
        """A CLIENT span per SQL statement (the statement with its placeholders, never the values)."""
        if not self.exporting or "sqlalchemy" in self.disabled:
            return
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        # The instrumentation declares SQLAlchemy < 2.1; 2.1 keeps the cursor events it listens to
        # (tests/integration/test_tracing_otlp.py checks the statements' spans arrive).
        SQLAlchemyInstrumentor().instrument(
            engine=engine.sync_engine, tracer_provider=self.provider, skip_dep_check=True
        )

    def instrument_redis(self, client: Redis) -> None:
        """A CLIENT span per Redis command or pipeline (arguments replaced by "?")."""
        if not self.exporting or "redis" in self.disabled:
            return
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor.instrument_client(client, tracer_provider=self.provider)


def configure_tracing(
    service: str,
    *,
    console: bool = False,
    sample_ratio: float = 1.0,
    environ: Mapping[str, str] | None = None,
) -> Tracing:
    """Install this process's tracer provider. Exporters come from OTEL_* (trace_export), each
    behind a BatchSpanProcessor so a request only appends to a queue; OTEL_SERVICE_NAME and
    OTEL_RESOURCE_ATTRIBUTES name the process (`service` when OTEL_SERVICE_NAME is unset). What is
    buffered is exported at interpreter exit (the provider's atexit hook), after runner.serve's
    drain has returned. `environ`: os.environ unless given (tests)."""
    env = os.environ if environ is None else environ
    names = exporter_names(env, console=console)
    exporters = span_exporters(names, env)
    exporting = bool(exporters)
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: (env.get("OTEL_SERVICE_NAME") or "").strip() or service}),
        sampler=make_sampler(env, sample_ratio=sample_ratio, exporting=exporting),
    )
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    disabled = env.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS") or ""
    return Tracing(provider, exporting, frozenset(n.strip() for n in disabled.split(",") if n.strip()))


@contextmanager
def kafka_publish_span(
    tracer: Tracer, topic: str, headers: list[tuple[str, bytes]]
) -> Iterator[list[tuple[str, bytes]]]:
    """A PRODUCER span for one record sent outside the request that made it (a background sender):
    child of the trace context its headers carry, it yields the headers re-pointed at itself so the
    consumers' spans hang under the publish. Records without a trace context, or whose trace is
    not recorded, are sent as they are (no span, headers untouched)."""
    if _traceparent_unsampled(headers):  # the common case without an exporter: nothing to parse
        yield headers
        return
    parent = context_from_kafka_headers(headers)
    if not trace.get_current_span(parent).get_span_context().trace_flags.sampled:
        yield headers
        return
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "messaging.operation.type": "send",
    }
    with tracer.start_as_current_span(
        f"{topic} publish", context=parent, kind=SpanKind.PRODUCER, attributes=attributes
    ):
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        yield [(k, v) for k, v in headers if k not in carrier] + [(k, v.encode()) for k, v in carrier.items()]


def _traceparent_unsampled(headers: Sequence[tuple[str, bytes]]) -> bool:
    """Whether the record's W3C traceparent says its trace is not sampled (flags' low bit clear):
    then extracting it gives an unsampled parent too, at a fraction of the cost (a record's trace
    headers are injected from one span context, so no other propagator's header says otherwise).
    False when there is none or its flags do not parse: the caller extracts and asks the context."""
    for key, value in headers:
        if key == "traceparent":
            try:
                return not int(value[-2:], 16) & 1
            except ValueError:
                return False
    return False


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
