"""A process configured by OTEL_* sends its spans to a real OTLP receiver, flushed at exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tollgate.devstack.config import SERVICES, StackConfig
from tollgate.devstack.otlp_receiver import OtlpReceiver

# A service's tracing as main.py sets it up; nothing flushes explicitly: the spans leave at exit.
PROGRAM = """
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from tollgate.common.telemetry import configure_tracing

configure_tracing("probe")
tracer = trace.get_tracer("probe.test")
with tracer.start_as_current_span("request", kind=SpanKind.SERVER):
    with tracer.start_as_current_span("query", kind=SpanKind.CLIENT):
        pass
with tracer.start_as_current_span("poller query", kind=SpanKind.CLIENT):
    pass
"""


def test_spans_reach_the_receiver_and_are_flushed_at_exit() -> None:
    with OtlpReceiver().running() as receiver:
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_BSP_SCHEDULE_DELAY": "600000",  # only the exit flush can send them
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=ci",
        }
        subprocess.run([sys.executable, "-c", PROGRAM], env=env, check=True, timeout=60)
        spans = receiver.spans()
    by_name = {s.name: s for s in spans}
    assert set(by_name) == {"request", "query"}  # a CLIENT span without a parent starts no trace
    request, query = by_name["request"], by_name["query"]
    assert (request.service, request.kind, request.parent_span_id) == ("probe", "SERVER", "")
    assert query.kind == "CLIENT"
    assert (query.trace_id, query.parent_span_id) == (request.trace_id, request.span_id)


def test_without_an_endpoint_nothing_is_exported_or_recorded() -> None:
    program = """
from opentelemetry import trace
from tollgate.common.telemetry import configure_tracing

tracing = configure_tracing("probe")
with trace.get_tracer("probe.test").start_as_current_span("request") as span:
    print(tracing.exporting, span.is_recording(), span.get_span_context().is_valid)
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", program], env=env, check=True, timeout=60, capture_output=True, text=True
    )
    # no exporter, no recording; the trace id still exists (logs, callees)
    assert done.stdout.split() == ["False", "False", "True"]


def test_the_stack_passes_the_otel_variables_to_every_service(tmp_path: Path) -> None:
    """`OTEL_EXPORTER_OTLP_ENDPOINT=... tollgate-stack up` traces every process of the stack."""
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_TRACES_SAMPLER_ARG": "0.5"}
    cfg = StackConfig.from_env(profile="dev", environ=environ, root=tmp_path)
    for svc in SERVICES:
        env = cfg.service_env(svc)
        assert {k: env[k] for k in environ} == environ, svc
    assert not any(
        k.startswith("OTEL_")
        for k in StackConfig.from_env(profile="dev", environ={}, root=tmp_path).service_env("gateway")
    )
