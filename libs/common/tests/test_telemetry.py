from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from tollgate.common.telemetry import (
    context_from_grpc_metadata,
    context_from_kafka_headers,
    grpc_metadata_from_context,
    header_value,
    kafka_headers_from_context,
)

_tracer = TracerProvider().get_tracer("test")


def test_trace_context_survives_a_kafka_round_trip() -> None:
    with _tracer.start_as_current_span("produce") as span:
        headers = kafka_headers_from_context({"event-type": "UsageRecorded"})
        trace_id = span.get_span_context().trace_id
    assert header_value(headers, "event-type") == "UsageRecorded"
    assert header_value(headers, "traceparent") is not None
    ctx = context_from_kafka_headers(headers)
    assert trace.get_current_span(ctx).get_span_context().trace_id == trace_id


def test_trace_context_survives_grpc_metadata() -> None:
    with _tracer.start_as_current_span("call") as span:
        metadata = grpc_metadata_from_context()
        trace_id = span.get_span_context().trace_id
    ctx = context_from_grpc_metadata(metadata)
    assert trace.get_current_span(ctx).get_span_context().trace_id == trace_id


def test_no_active_span_means_no_traceparent() -> None:
    assert header_value(kafka_headers_from_context(), "traceparent") is None
