"""What the OTEL_* variables select: exporters, protocol, sampler; and the Kafka publish span."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Sampler
from opentelemetry.trace import SpanKind

from tollgate.common.telemetry import (
    context_from_kafka_headers,
    header_value,
    kafka_headers_from_context,
    kafka_publish_span,
)
from tollgate.common.trace_export import (
    TracingConfigError,
    exporter_names,
    make_sampler,
    otlp_protocol,
    span_exporters,
)

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}


def test_nothing_is_exported_without_an_endpoint_or_an_exporter() -> None:
    assert exporter_names({}) == []
    assert exporter_names({}, console=True) == ["console"]


def test_an_endpoint_turns_otlp_on() -> None:
    assert exporter_names(ENDPOINT) == ["otlp"]
    assert exporter_names({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}) == ["otlp"]
    assert exporter_names({**ENDPOINT, "OTEL_TRACES_EXPORTER": "none"}) == []
    assert exporter_names({"OTEL_TRACES_EXPORTER": "otlp, console"}) == ["otlp", "console"]


@pytest.mark.parametrize("value", ["zipkin", "none,otlp"])
def test_an_unusable_exporter_is_refused_by_name(value: str) -> None:
    with pytest.raises(TracingConfigError, match="OTEL_TRACES_EXPORTER"):
        exporter_names({"OTEL_TRACES_EXPORTER": value})


def test_protocol_defaults_to_http_protobuf_and_the_traces_variable_wins() -> None:
    assert otlp_protocol({}) == "http/protobuf"
    assert otlp_protocol({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}) == "grpc"
    both = {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}
    assert otlp_protocol(both) == "http/protobuf"
    with pytest.raises(TracingConfigError, match=r"OTEL_EXPORTER_OTLP_PROTOCOL.*http/json"):
        otlp_protocol({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})


def test_the_protocol_picks_the_exporter() -> None:
    (grpc_exporter,) = span_exporters(["otlp"], {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    (http_exporter, console) = span_exporters(["otlp", "console"], {})
    assert isinstance(grpc_exporter, GrpcExporter)
    assert isinstance(http_exporter, HttpExporter)
    assert isinstance(console, ConsoleSpanExporter)
    for exporter in (grpc_exporter, http_exporter):
        exporter.shutdown()


def _sampled(sampler: Sampler, kind: SpanKind = SpanKind.SERVER, parent: trace.Span | None = None) -> bool:
    ctx = trace.set_span_in_context(parent) if parent is not None else None
    return sampler.should_sample(ctx, 0x1234, "span", kind).decision.is_sampled()


def test_without_an_exporter_no_new_trace_is_recorded() -> None:
    assert not _sampled(make_sampler({}, sample_ratio=1.0, exporting=False))


def test_exporting_samples_roots_but_not_bare_client_calls() -> None:
    sampler = make_sampler({}, sample_ratio=1.0, exporting=True)
    assert _sampled(sampler, SpanKind.SERVER)
    assert _sampled(sampler, SpanKind.CONSUMER)
    assert not _sampled(sampler, SpanKind.CLIENT)  # a poller's query: no trace of its own
    parent = TracerProvider(sampler=sampler).get_tracer("t").start_span("request")
    assert _sampled(sampler, SpanKind.CLIENT, parent)  # the same query inside a request: kept
    probe = sampler.should_sample(None, 0x1234, "GET /readyz", SpanKind.SERVER, {"http.target": "/readyz"})
    assert not probe.decision.is_sampled()


def test_standard_sampler_variables() -> None:
    assert not _sampled(make_sampler({"OTEL_TRACES_SAMPLER_ARG": "0"}, sample_ratio=1.0, exporting=True))
    assert _sampled(make_sampler({"OTEL_TRACES_SAMPLER_ARG": "1"}, sample_ratio=0.0, exporting=True))
    off = {"OTEL_TRACES_SAMPLER": "parentbased_always_off"}
    assert not _sampled(make_sampler(off, sample_ratio=1.0, exporting=True))
    on = {"OTEL_TRACES_SAMPLER": "always_on"}
    assert _sampled(make_sampler(on, sample_ratio=0.0, exporting=True))
    with pytest.raises(TracingConfigError, match="OTEL_TRACES_SAMPLER_ARG"):
        make_sampler({"OTEL_TRACES_SAMPLER_ARG": "1.5"}, sample_ratio=1.0, exporting=True)
    with pytest.raises(TracingConfigError, match="OTEL_TRACES_SAMPLER"):
        make_sampler({"OTEL_TRACES_SAMPLER": "jaeger_remote"}, sample_ratio=1.0, exporting=True)


def test_a_publish_span_sits_between_the_request_and_the_consumers() -> None:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("request") as request:
        headers = kafka_headers_from_context({"event-type": "UsageRecorded"})
    with kafka_publish_span(tracer, "usage.v1", headers) as sent:
        pass
    (publish,) = [s for s in spans.get_finished_spans() if s.name == "usage.v1 publish"]
    assert publish.kind is SpanKind.PRODUCER
    assert publish.parent is not None and publish.parent.span_id == request.get_span_context().span_id
    consumer_parent = trace.get_current_span(context_from_kafka_headers(sent)).get_span_context()
    assert consumer_parent.span_id == publish.context.span_id
    assert header_value(sent, "event-type") == "UsageRecorded"
    assert sum(1 for k, _ in sent if k == "traceparent") == 1


def test_an_untraced_record_is_sent_as_it_is() -> None:
    tracer = TracerProvider().get_tracer("t")
    headers = [("event-type", b"UsageRecorded")]
    with kafka_publish_span(tracer, "usage.v1", headers) as sent:
        assert sent is headers
