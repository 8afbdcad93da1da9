"""A Kafka consumer's lag per partition, as a Prometheus gauge refreshed on a timer of its own.

Lag is what the group has not finished with: the partition's end offset minus the group's committed
offset (its consumers commit only after their database commit). Measured by its own task, not after
each poll, so it stays true while a batch is being retried through a database outage (the poll loop
is stuck, the lag grows) and after a rebalance (partitions this member no longer owns leave the
gauge, so summing over the members of the group counts each partition once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping
from typing import Protocol

from aiokafka import TopicPartition
from prometheus_client import Gauge

log = logging.getLogger(__name__)


class GroupMember(Protocol):
    """What is read of an AIOKafkaConsumer: its partitions, their offsets, the group's commits."""

    def assignment(self) -> Collection[TopicPartition]: ...
    async def end_offsets(self, partitions: list[TopicPartition]) -> Mapping[TopicPartition, int]: ...
    async def beginning_offsets(self, partitions: list[TopicPartition]) -> Mapping[TopicPartition, int]: ...
    async def committed(self, partition: TopicPartition) -> int | None: ...


class ConsumerLag:
    """`gauge` has one label, `partition`; `consumer` returns the current consumer (a renewed one
    replaces it, see kafka.consume_with_renewal)."""

    def __init__(
        self,
        gauge: Gauge,
        consumer: Callable[[], GroupMember],
        *,
        interval_s: float = 5.0,
        timeout_s: float = 10.0,
    ) -> None:
        self._gauge = gauge
        self._consumer = consumer
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._shown: set[str] = set()

    async def run(self) -> None:
        """Until cancelled; a refresh that fails (Kafka away, a rebalance under way) is tried again."""
        while True:
            try:
                async with asyncio.timeout(self._timeout_s):  # not wait_for: it can lose a cancel in 3.11
                    await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the gauge keeps its last values; the next round retries
                log.debug("consumer lag not refreshed", extra={"error": repr(exc)})
            await asyncio.sleep(self._interval_s)

    async def refresh(self) -> None:
        consumer = self._consumer()
        assigned = sorted(consumer.assignment(), key=lambda tp: (tp.topic, tp.partition))
        lags: dict[str, int] = {}
        if assigned:
            ends = await consumer.end_offsets(assigned)
            starts: Mapping[TopicPartition, int] | None = None
            for tp in assigned:
                committed = await consumer.committed(tp)
                if committed is None:  # nothing committed yet: all that the partition still holds
                    if starts is None:
                        starts = await consumer.beginning_offsets(assigned)
                    committed = starts[tp]
                lags[str(tp.partition)] = max(ends[tp] - committed, 0)
        for partition, lag in lags.items():
            self._gauge.labels(partition).set(lag)
        for gone in self._shown - set(lags):
            self._gauge.remove(gone)
        self._shown = set(lags)
