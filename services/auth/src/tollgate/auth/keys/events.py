"""`ApiKeyChanged` on auth.keys.v1, published after commit so gateways drop their cached principal."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from tollgate.common.kafka import EVENT_TYPE_HEADER, TOPIC_AUTH_KEYS
from tollgate.common.telemetry import kafka_headers_from_context
from tollgate.common.waits import timed
from tollgate.contracts.v1 import events_pb2

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class KeyChange:
    key_id: int
    key_hash: str  # what caches are keyed by; never the key itself
    change: str  # "revoked" | "updated" | "deleted"
    changed_at: datetime

    def to_proto(self) -> events_pb2.ApiKeyChanged:
        return events_pb2.ApiKeyChanged(
            key_id=self.key_id,
            key_hash=self.key_hash,
            change=self.change,
            changed_at_unix_ms=int(self.changed_at.timestamp() * 1000),
        )


class KeyEvents(Protocol):
    async def publish(self, changes: Sequence[KeyChange]) -> None: ...


class KafkaKeyEvents:
    """Best effort by design: when Kafka is down the change is already committed, and gateway
    caches expire within their TTL, so a warning is the right outcome rather than a failed call."""

    def __init__(self, producer_factory: Callable[[], AIOKafkaProducer], timeout_s: float) -> None:
        self._factory = producer_factory
        self._timeout = timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> bool:
        async with self._lock:
            if self._producer is not None:
                return True
            producer = self._factory()
            try:
                await timed(producer.start(), self._timeout)
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning("kafka unavailable; trying again at the next change", extra={"error": str(exc)})
                # a producer whose start failed is not reusable; the next publish builds a new one
                await _stop_quietly(producer)
                return False
            self._producer = producer
            return True

    async def publish(self, changes: Sequence[KeyChange]) -> None:
        if not changes or not await self.start():
            for change in changes:
                _warn_unpublished(change, "kafka unavailable")
            return
        assert self._producer is not None
        headers = kafka_headers_from_context({EVENT_TYPE_HEADER: "ApiKeyChanged"})
        for change in changes:
            try:
                await timed(
                    self._producer.send_and_wait(
                        TOPIC_AUTH_KEYS,
                        value=change.to_proto().SerializeToString(),
                        key=str(change.key_id).encode(),
                        headers=headers,
                    ),
                    self._timeout,
                )
            except (KafkaError, OSError, TimeoutError) as exc:
                _warn_unpublished(change, str(exc) or type(exc).__name__)

    async def send_record(
        self, topic: str, value: bytes, *, key: bytes, headers: list[tuple[str, bytes]]
    ) -> bool:
        """One record on any topic through this same idempotent producer; True once the broker
        acknowledged it (acks=all). Unlike `publish`, the caller learns of a failure and decides."""
        if not await self.start():
            return False
        assert self._producer is not None
        try:
            await timed(
                self._producer.send_and_wait(topic, value=value, key=key, headers=headers), self._timeout
            )
        except (KafkaError, OSError, TimeoutError) as exc:
            error = str(exc) or type(exc).__name__
            log.warning("kafka record not sent", extra={"topic": topic, "error": error})
            return False
        return True

    async def stop(self) -> None:
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            await _stop_quietly(producer)


def _warn_unpublished(change: KeyChange, error: str) -> None:
    log.warning(
        "ApiKeyChanged not published; gateway caches will expire on their own",
        extra={"key_id": change.key_id, "change": change.change, "error": error},
    )


async def _stop_quietly(producer: AIOKafkaProducer) -> None:
    try:
        await timed(producer.stop(), 5)
    except (KafkaError, OSError, TimeoutError) as exc:
        log.warning("kafka producer did not stop cleanly", extra={"error": str(exc)})
