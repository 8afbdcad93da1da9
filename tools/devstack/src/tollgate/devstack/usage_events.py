"""Usage events straight onto Kafka, as the gateway publishes them: for tests and the billing bench."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any

from tollgate.common.kafka import EVENT_TYPE_HEADER, TOPIC_USAGE, make_producer
from tollgate.contracts.v1 import events_pb2


def usage_event(
    org_id: str,
    key_id: int,
    cost_micros: int,
    *,
    event_id: str | None = None,
    user_id: str = "",
    model: str = "sim-chat",
) -> events_pb2.UsageRecorded:
    """A UsageRecorded as the gateway publishes it (request id = event id), with a chosen cost."""
    now = int(time.time() * 1000)
    return events_pb2.UsageRecorded(
        event_id=event_id or f"req_{uuid.uuid4().hex}",
        org_id=org_id,
        key_id=key_id,
        user_id=user_id,
        model=model,
        provider="openai-compatible",
        tokens_in=10,
        tokens_out=10,
        cost_micros=cost_micros,
        latency_ms=5,
        status="ok",
        started_at_unix_ms=now - 5,
        finished_at_unix_ms=now,
        endpoint="/v1/chat/completions",
        operation="chat",
    )


async def publish_async(
    bootstrap: str, events: Sequence[events_pb2.UsageRecorded], client_id: str, **producer_options: Any
) -> None:
    """To usage.v1 keyed by org (as the gateway does), in order; returns once every event is acked."""
    producer = make_producer(bootstrap, client_id, **producer_options)
    await producer.start()
    try:
        futures = [
            await producer.send(
                TOPIC_USAGE,
                e.SerializeToString(),
                key=e.org_id.encode(),
                headers=[(EVENT_TYPE_HEADER, b"UsageRecorded")],
            )
            for e in events
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def publish(
    bootstrap: str,
    events: Sequence[events_pb2.UsageRecorded],
    client_id: str = "tests",
    **producer_options: Any,
) -> None:
    asyncio.run(publish_async(bootstrap, events, client_id, **producer_options))
