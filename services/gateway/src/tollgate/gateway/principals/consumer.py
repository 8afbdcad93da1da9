"""Drops cached principals when auth says a key changed (topic auth.keys.v1).

Every gateway process reads every event: its own group id, starting at the latest offset. When
the consumer (re)connects it clears the cache, since events may have been missed meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer
from google.protobuf.message import DecodeError

from tollgate.common.kafka import TOPIC_AUTH_KEYS, Brokers, make_consumer
from tollgate.contracts.v1 import events_pb2
from tollgate.gateway.metrics import GatewayMetrics
from tollgate.gateway.principals.cache import PrincipalCache

log = logging.getLogger(__name__)

ConsumerFactory = Callable[[], AIOKafkaConsumer]


def default_consumer_factory(brokers: Brokers) -> ConsumerFactory:
    group_id = f"gateway-keys-{uuid.uuid4().hex[:12]}"

    def make() -> AIOKafkaConsumer:
        return make_consumer(
            brokers,
            group_id,
            TOPIC_AUTH_KEYS,
            auto_offset_reset="latest",
            isolation_level="read_uncommitted",
            # A revocation must reach the cache at once: the broker answers a fetch as soon as one
            # byte is there, and holds an empty one for up to 500 ms (Kafka's own default) rather
            # than 100 (ten empty fetches a second per gateway process, for a topic that is quiet
            # nearly always).
            fetch_min_bytes=1,
            fetch_max_wait_ms=500,
        )

    return make


class KeyInvalidationConsumer:
    def __init__(
        self,
        factory: ConsumerFactory,
        cache: PrincipalCache,
        metrics: GatewayMetrics,
        retry_s: float = 2.0,
    ) -> None:
        self._factory = factory
        self._cache = cache
        self._metrics = metrics
        self._retry_s = retry_s

    def apply(self, payload: bytes) -> None:
        event = events_pb2.ApiKeyChanged()
        try:
            event.ParseFromString(payload)
        except DecodeError:
            log.warning("undecodable auth.keys.v1 record skipped")
            return
        if event.key_id:
            self._cache.invalidate_key_id(event.key_id)
        else:
            self._cache.clear()  # no key id: the only safe reading is "anything may have changed"
        self._metrics.key_invalidations.inc()

    async def run(self) -> None:
        while True:
            consumer = self._factory()
            try:
                await consumer.start()
                self._cache.clear()
                log.info("listening for key changes on %s", TOPIC_AUTH_KEYS)
                async for record in consumer:
                    if record.value is not None:
                        self.apply(record.value)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("key invalidation consumer failed; retrying", exc_info=True)
            finally:
                try:
                    await consumer.stop()
                except Exception:
                    log.debug("consumer stop failed", exc_info=True)
            # Missed events while disconnected would leave revoked keys cached: start clean.
            self._cache.clear()
            await asyncio.sleep(self._retry_s)
