"""Traces leave the processes (issue 13, item 6): a real OTLP/gRPC receiver started here gets, for
ONE paid chat request, one trace id across gateway -> auth (gRPC) -> billing (gRPC) -> Kafka publish
-> billing worker (consume, settle, its PostgreSQL calls) -> analytics (consume).

A stack of its own (profile `otel`, the test ports + 1000): every service must start with the
OTEL_* variables pointing at this receiver and sampling every trace, which the shared stack does not.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tollgate.devstack.config import StackConfig
from tollgate.devstack.otlp_receiver import OtlpReceiver, ReceivedSpan
from tollgate.devstack.stack import Stack
from tollgate.devstack.testing import register_model, settled_events, wait_until


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver().running() as running:
        yield running


@pytest.fixture(scope="module")
def traced_stack(receiver: OtlpReceiver) -> Iterator[Stack]:
    settings = {
        "TOLLGATE_PORT_OFFSET": "1000",
        # what an operator sets for a collector (docs/operations.md, "Traces"), for every service
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # milliseconds: the test waits less for each batch
    }
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    stack = Stack(StackConfig.from_env(profile="otel", environ={**environ, **settings}))
    stack.down()  # a stack left running by an earlier session may run without these variables
    stack.up(local_model=False)
    yield stack
    if os.environ.get("TOLLGATE_KEEP_STACK") != "1":
        stack.down()


def _paid_request(stack: Stack) -> tuple[str, str]:
    """A funded key's chat completion; returns (the gateway's request id, the org id)."""
    cfg = stack.cfg
    gateway = cfg.url("gateway")
    admin_headers = {"Authorization": f"Bearer {cfg.admin_api_key}"}
    with httpx.Client(base_url=gateway, headers=admin_headers, timeout=30) as admin:
        register_model(admin, "sim-chat", "sim-chat", cfg.url("upstream_sim"))
        applied = admin.post(
            "/admin/api-key/apply",
            json={"name": f"otel-{uuid.uuid4().hex[:8]}", "group_id": 1, "role": "user", "email": ""},
        )
        assert applied.status_code == 200, applied.text
        key, org_id = applied.json()["api_key"], applied.json()["org_id"]
        funded = admin.post("/admin/api-key/recharge", json={"api_key": key, "balance": 1})
        assert funded.status_code == 200, funded.text
    answer = httpx.post(
        f"{gateway}/v1/chat/completions",
        json={"model": "sim-chat", "messages": [{"role": "user", "content": "trace me"}], "max_tokens": 5},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return answer.headers["x-request-id"], org_id


def _the_request_span(receiver: OtlpReceiver, request_id: str) -> ReceivedSpan | None:
    for span in receiver.spans():
        if span.service == "gateway" and span.attributes.get("tollgate.request_id") == request_id:
            return span
    return None


def _one(spans: list[ReceivedSpan], service: str, kind: str, name_part: str) -> ReceivedSpan:
    found = [s for s in spans if s.service == service and s.kind == kind and name_part in s.name]
    summary = sorted({(s.service, s.kind, s.name) for s in spans})
    assert found, f"no {kind} span of {service} named like {name_part!r} in the trace: {summary}"
    return found[0]


def _statement(span: ReceivedSpan) -> str:
    return str(span.attributes.get("db.statement") or span.attributes.get("db.query.text") or "")


def _everything_arrived(receiver: OtlpReceiver, trace_id: str) -> list[ReceivedSpan] | None:
    spans = receiver.trace(trace_id)
    consumers = {s.service for s in spans if s.kind == "CONSUMER"}
    return spans if {"billing-worker", "analytics"} <= consumers else None


def test_one_paid_request_is_one_trace_across_every_service(
    traced_stack: Stack, receiver: OtlpReceiver
) -> None:
    request_id, org_id = _paid_request(traced_stack)
    wait_until(lambda: settled_events(traced_stack.cfg, org_id) == 1, what="the usage event settled")
    request = wait_until(lambda: _the_request_span(receiver, request_id), what="the gateway's span")
    assert request.kind == "SERVER" and request.parent_span_id == ""  # the gateway started the trace
    spans = wait_until(lambda: _everything_arrived(receiver, request.trace_id), what="the consumers' spans")
    by_id = {s.span_id: s for s in spans}

    def ancestors(span: ReceivedSpan) -> list[ReceivedSpan]:
        chain = []
        while span.parent_span_id in by_id:
            span = by_id[span.parent_span_id]
            chain.append(span)
        return chain

    # gateway -> auth and gateway -> billing over gRPC: server spans under the gateway's request
    authenticate = _one(spans, "auth", "SERVER", "Authenticate")
    reserve = _one(spans, "billing", "SERVER", "Reserve")
    for server in (authenticate, reserve):
        assert request in ancestors(server), server
    # the usage event: published by the gateway under the request, consumed under the publish
    publish = _one(spans, "gateway", "PRODUCER", "usage.v1")
    assert request in ancestors(publish)
    settle = _one(spans, "billing-worker", "CONSUMER", "usage.v1")
    stored = _one(spans, "analytics", "CONSUMER", "usage.v1")
    assert settle.parent_span_id == publish.span_id
    assert stored.parent_span_id == publish.span_id
    # the settlement's own PostgreSQL statements are in the same trace, under the consume span
    settlement_sql = [
        s
        for s in spans
        if s.service == "billing-worker" and s.kind == "CLIENT" and "usage_settlements" in _statement(s)
    ]
    assert settlement_sql, sorted({(s.service, s.name) for s in spans})
    assert all(settle in ancestors(s) for s in settlement_sql)
    assert all(
        s.attributes.get("db.system", s.attributes.get("db.system.name")) == "postgresql"
        for s in settlement_sql
    )
    # Redis client spans too: billing's Reserve runs its hold script in Redis
    assert any(s.service == "billing" and s.kind == "CLIENT" and reserve in ancestors(s) for s in spans)
