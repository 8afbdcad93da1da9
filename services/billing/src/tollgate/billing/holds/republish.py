"""Publishes the usage events kept in the marks of holds whose requests were answered but never
settled (docs/billing.md, "Holds at answer time"): the gateway that answered them died before its
own copy of the event reached Kafka, or that copy is late. Same event id, same headers, so billing's
worker and analytics each count the request exactly once whichever copy comes first."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from tollgate.common.kafka import TOPIC_USAGE
from tollgate.common.waits import timed
from tollgate.contracts.v1 import billing_pb2

log = logging.getLogger(__name__)

RECOVERED_HEADER = "tollgate-recovered"  # marks a record published by billing from a hold mark

# aiokafka's AIOKafkaProducer, or a stand-in with start/stop/send in unit tests
ProducerFactory = Callable[[], Any]


class MarkRepublisher:
    def __init__(
        self, producer_factory: ProducerFactory, *, topic: str = TOPIC_USAGE, timeout_s: float = 10.0
    ) -> None:
        self._factory = producer_factory
        self._topic = topic
        self._timeout = timeout_s
        self._producer: Any = None
        self._lock = asyncio.Lock()

    async def __call__(self, payloads: Sequence[str]) -> None:
        """Publishes every mark's event and waits for the broker's acks; raises if any is missing
        (the sweeper keeps those holds and tries again later)."""
        async with self._lock:
            producer = await self._started()
            try:
                futures = []
                for payload in payloads:
                    mark = billing_pb2.HoldMark.FromString(base64.b64decode(payload))
                    headers = [(h.key, h.value) for h in mark.headers if h.key != RECOVERED_HEADER]
                    headers.append((RECOVERED_HEADER, b"hold-mark"))
                    futures.append(
                        await producer.send(
                            self._topic, mark.usage_event, key=mark.org_id.encode(), headers=headers
                        )
                    )
                await timed(asyncio.gather(*futures), self._timeout)
            except Exception:
                await self._drop()  # a fresh producer next time: this one may be wedged
                raise

    async def _started(self) -> Any:
        if self._producer is None:
            producer = self._factory()
            try:
                await timed(producer.start(), self._timeout)
            except Exception:
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _drop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def close(self) -> None:
        async with self._lock:
            await self._drop()
