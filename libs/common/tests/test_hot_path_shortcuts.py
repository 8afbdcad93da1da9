"""Shortcuts the gateway's hot path takes (docs/benchmarks.md, "Gateway CPU per request"): each must
give exactly what the long way gives."""

from __future__ import annotations

import uuid

from aiokafka.partitioner import DefaultPartitioner
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

from tollgate.common.kafka import KeyHashPartitioner
from tollgate.common.telemetry import kafka_headers_from_context, kafka_publish_span


def test_the_key_hash_partitioner_picks_the_default_partitioners_partition() -> None:
    ours, default = KeyHashPartitioner(max_keys=50), DefaultPartitioner()
    keys = [str(uuid.uuid4()).encode() for _ in range(200)] + [b"", b"a", b"org-1" * 40]
    for partitions in ([0], [0, 1, 2], list(range(12)), [3, 5, 9]):
        for _ in range(2):  # the second pass is served from the remembered hashes (some evicted)
            for key in keys:
                assert ours(key, partitions, partitions) == default(key, partitions, partitions)


def test_the_key_hash_partitioner_spreads_keyless_records_over_available_partitions() -> None:
    ours = KeyHashPartitioner()
    assert {ours(None, [0, 1, 2], [1]) for _ in range(20)} == {1}
    assert {ours(None, [0, 1], []) for _ in range(50)} <= {0, 1}


def _recorded(sampled_parent: bool) -> tuple[InMemorySpanExporter, list[tuple[str, bytes]], object]:
    spans = InMemorySpanExporter()
    # the gateway without an exporter samples nothing new; with a sampled parent a span is kept
    sampler = None if sampled_parent else ParentBased(ALWAYS_OFF)
    provider = TracerProvider(sampler=sampler) if sampler is not None else TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("request"):
        headers = kafka_headers_from_context({"event-type": "UsageRecorded"})
    return spans, headers, tracer


def test_an_unsampled_records_headers_go_out_untouched_and_without_a_span() -> None:
    spans, headers, tracer = _recorded(sampled_parent=False)
    traceparent = dict(headers)["traceparent"]
    assert not int(traceparent[-2:], 16) & 1  # the request's trace id travels, unsampled
    with kafka_publish_span(tracer, "usage.v1", headers) as sent:  # type: ignore[arg-type]
        assert sent is headers
    assert spans.get_finished_spans() == ()


def test_a_sampled_records_publish_span_is_still_made() -> None:
    spans, headers, tracer = _recorded(sampled_parent=True)
    with kafka_publish_span(tracer, "usage.v1", headers) as sent:  # type: ignore[arg-type]
        assert sent is not headers
    assert [s.name for s in spans.get_finished_spans()] == ["request", "usage.v1 publish"]


def test_a_malformed_traceparent_takes_the_long_way() -> None:
    tracer = TracerProvider().get_tracer("t")
    headers = [("traceparent", b"00-zz"), ("event-type", b"UsageRecorded")]
    with kafka_publish_span(tracer, "usage.v1", headers) as sent:
        assert sent is headers  # extract finds no parent: sent as it is
