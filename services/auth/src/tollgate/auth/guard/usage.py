"""The UsageRecorded event a guard API client reports through /api/guard/log-usage."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Protocol

from tollgate.common.auth_client import Principal
from tollgate.common.kafka import EVENT_TYPE_HEADER
from tollgate.common.money import credits_to_micros
from tollgate.common.telemetry import kafka_headers_from_context
from tollgate.contracts.v1 import events_pb2

ENDPOINT = "/api/guard/log-usage"
EVENT_PREFIX = "guard_"
MAX_IDEMPOTENCY_KEY = 200


class RecordSender(Protocol):
    """KafkaKeyEvents.send_record (auth's one idempotent producer), or a fake in tests."""

    async def send_record(
        self, topic: str, value: bytes, *, key: bytes, headers: list[tuple[str, bytes]]
    ) -> bool: ...


class NoSender:
    """For apps built without Kafka (unit tests of other routes): every send fails, so 503."""

    async def send_record(
        self, topic: str, value: bytes, *, key: bytes, headers: list[tuple[str, bytes]]
    ) -> bool:
        return False


def event_id_for(key_id: int, idempotency_key: str | None) -> str:
    """Consumers dedupe on the event id. A client's Idempotency-Key is hashed with its key id, so a
    retry maps to the same id while no client can pick (or collide with) anyone else's ids."""
    if idempotency_key:
        digest = hashlib.sha256(f"{key_id}:{idempotency_key}".encode()).hexdigest()
        return EVENT_PREFIX + digest
    return EVENT_PREFIX + uuid.uuid4().hex


def usage_recorded(
    event_id: str,
    principal: Principal,
    *,
    model: str,
    tokens_in: int,
    tokens_out: int,
    total_cost: float,
    now: datetime,
) -> events_pb2.UsageRecorded:
    at_ms = int(now.timestamp() * 1000)
    return events_pb2.UsageRecorded(
        event_id=event_id,
        org_id=principal.org_id,
        key_id=principal.key_id,
        user_id=principal.user_id,
        model=model,
        provider="external",  # the client ran the model itself; we only meter it
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cost_micros=credits_to_micros(total_cost),
        latency_ms=0,
        status="ok",
        hold_id="",  # no hold: the client reports after the fact
        started_at_unix_ms=at_ms,
        finished_at_unix_ms=at_ms,
        endpoint=ENDPOINT,
        stream=False,
        tokens_estimated=False,
    )


def same_report(kept: events_pb2.UsageRecorded, retry: events_pb2.UsageRecorded) -> bool:
    """Whether a retry reports what the kept first attempt did (its time aside)."""
    fields = ("org_id", "key_id", "model", "tokens_in", "tokens_out", "cost_micros")
    return all(getattr(kept, f) == getattr(retry, f) for f in fields)


def usage_headers() -> list[tuple[str, bytes]]:
    return [(EVENT_TYPE_HEADER, b"UsageRecorded"), *kafka_headers_from_context()]
