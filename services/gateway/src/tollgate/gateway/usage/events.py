"""The UsageRecorded fact the gateway publishes after every answer (topic usage.v1)."""

from __future__ import annotations

from dataclasses import dataclass

from tollgate.common.auth_client import Principal
from tollgate.common.kafka import EVENT_TYPE_HEADER
from tollgate.common.telemetry import kafka_headers_from_context
from tollgate.contracts.v1 import events_pb2
from tollgate.gateway.pricing.cost import Usage


@dataclass(slots=True)
class OutgoingEvent:
    """A serialized record, ready for Kafka or the spool."""

    event_id: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    org_id: str = ""
    hold_id: str = ""  # the billing hold the request used ("" when none)
    cost_micros: int = 0


def trace_headers() -> list[tuple[str, bytes]]:
    """Captured while the request span is current, so the consumers' spans join the request's trace."""
    return [(EVENT_TYPE_HEADER, b"UsageRecorded"), *kafka_headers_from_context()]


def usage_event(
    *,
    request_id: str,
    principal: Principal,
    model: str,
    provider: str,
    tokens_in: int,
    tokens_out: int,
    cost_micros: int,
    status: str,
    hold_id: str,
    started_at_unix_ms: int,
    finished_at_unix_ms: int,
    latency_ms: int,
    endpoint: str,
    stream: bool,
    tokens_estimated: bool,
    headers: list[tuple[str, bytes]],
    operation: str = "chat",
    batch: bool = False,
    units: int = 0,
    token_classes: Usage | None = None,
    requested_model: str = "",
    deployment: str = "",
) -> OutgoingEvent:
    event = events_pb2.UsageRecorded(
        event_id=request_id,
        org_id=principal.org_id,
        key_id=principal.key_id,
        user_id=principal.user_id,
        model=model,
        provider=provider,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cost_micros=cost_micros,
        latency_ms=latency_ms,
        status=status,
        hold_id=hold_id,
        started_at_unix_ms=started_at_unix_ms,
        finished_at_unix_ms=finished_at_unix_ms,
        endpoint=endpoint,
        stream=stream,
        tokens_estimated=tokens_estimated,
        operation=operation,
        batch=batch,
        units=units,
        requested_model=requested_model,
        deployment=deployment,
    )
    if token_classes is not None:
        event.tokens_cached_in = token_classes.cached_in
        event.tokens_cache_write = token_classes.cache_write
        event.tokens_reasoning = token_classes.reasoning
    return OutgoingEvent(
        request_id,
        principal.org_id.encode(),
        event.SerializeToString(),
        headers,
        principal.org_id,
        hold_id,
        cost_micros,
    )
