"""Events to Kafka after the transaction that wrote them commits (a transactional outbox).

`outbox_record` builds the row (topic, key, the protobuf message, its event-type and the current
trace context); the caller adds it to its session, so the event exists exactly when the change it
describes does. `OutboxRelay` publishes rows in id order and deletes them: one relay at a time holds
a PostgreSQL advisory lock, so records of one key keep their order even with many processes. A
crash between the broker's ack and the delete publishes a record again: consumers dedupe on event id.

A relay wakes when a record is committed: the `outbox` table's trigger (migration 0004) sends
`NOTIFY training_outbox`, and a `NotifyListener` holds a connection that LISTENs for it. The interval
is only the fallback for a notification missed while that connection was down (it wakes the relay
once each time it connects, too).
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from google.protobuf.message import Message
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.common.kafka import EVENT_TYPE_HEADER
from tollgate.common.telemetry import kafka_headers_from_context
from tollgate.common.waits import wait_event
from tollgate.training.events.models import OutboxRecord
from tollgate.training.notify import NotifyListener, listening

log = logging.getLogger(__name__)

_RELAY_LOCK = zlib.crc32(b"tollgate-training:outbox-relay")


def outbox_record(topic: str, key: str, message: Message, traceparent: str | None = None) -> OutboxRecord:
    """The row for one event. Trace context: the current span's, else the job's stored one."""
    headers = dict((k, v.decode()) for k, v in kafka_headers_from_context())
    if "traceparent" not in headers and traceparent:
        headers["traceparent"] = traceparent
    event_type = message.DESCRIPTOR.name
    headers[EVENT_TYPE_HEADER] = event_type
    return OutboxRecord(
        topic=topic, key=key, event_type=event_type, payload=message.SerializeToString(), headers=headers
    )


class OutboxMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.published = Counter(
            "training_outbox_published_total",
            "Outbox records published to Kafka",
            ["topic"],
            registry=registry,
        )
        self.failures = Counter(
            "training_outbox_failures_total", "Outbox relay rounds that failed", registry=registry
        )


class OutboxRelay:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        producer_factory: Callable[[], AIOKafkaProducer],
        metrics: OutboxMetrics,
        *,
        interval_s: float = 5.0,
        batch: int = 200,
        listener: NotifyListener | None = None,
    ) -> None:
        self._sessions = sessions
        self._listener = listener
        self._producer_factory = producer_factory
        self._metrics = metrics
        self._interval_s = interval_s
        self._batch = batch
        self._wake = asyncio.Event()

    def kick(self) -> None:
        """Publish now rather than at the next interval (after a commit that wrote records)."""
        self._wake.set()

    async def run(self) -> None:
        producer: AIOKafkaProducer | None = None
        backoff = self._interval_s
        try:
            async with listening(self._listener, self.kick):
                while True:
                    # before the round, not after it: a record committed while the round runs (its
                    # NOTIFY, or a kick) must wake the next round at once, not wait out the interval
                    self._wake.clear()
                    try:
                        if producer is None:
                            producer = self._producer_factory()
                            await producer.start()
                        while await self.publish_once(producer) >= self._batch:
                            pass
                        backoff = self._interval_s
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        self._metrics.failures.inc()
                        log.warning("outbox relay round failed; retrying", exc_info=True)
                        if producer is not None:
                            await _stop_quietly(producer)
                        producer = None
                        backoff = min(backoff * 2, 10.0)
                    await wait_event(self._wake, backoff)
        finally:
            if producer is not None:
                await _stop_quietly(producer)

    async def publish_once(self, producer: AIOKafkaProducer) -> int:
        """One batch: sent, acknowledged, then deleted in the transaction that locked it."""
        async with self._sessions.begin() as session:
            locked = (
                await session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _RELAY_LOCK})
            ).scalar_one()
            if not locked:
                return 0
            rows = list(
                (
                    await session.execute(select(OutboxRecord).order_by(OutboxRecord.id).limit(self._batch))
                ).scalars()
            )
            if not rows:
                return 0
            futures: list[Any] = []
            for row in rows:
                headers = [(k, str(v).encode()) for k, v in row.headers.items()]
                futures.append(
                    await producer.send(row.topic, row.payload, key=row.key.encode(), headers=headers)
                )
            await asyncio.gather(*futures)
            await session.execute(delete(OutboxRecord).where(OutboxRecord.id.in_([r.id for r in rows])))
        for row in rows:
            self._metrics.published.labels(row.topic).inc()
        return len(rows)


async def _stop_quietly(producer: AIOKafkaProducer) -> None:
    try:
        await producer.stop()
    except Exception:
        log.debug("producer stop failed", exc_info=True)
