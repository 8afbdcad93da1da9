"""Kafka → Redis Streams for /ws (consumer group `gateway-realtime`, shared by every gateway replica,
so each fact is handled by one of them): training.v1, billing.alerts.v1 and usage.v1 facts become
realtime events appended to their organisation's stream, deduplicated on the source event id (Kafka
redelivers); offsets are committed after the Redis write.

usage.v1 carries every request of every organisation: a record is decoded only when its key (the
org id) is one whose usage someone watches (store.watch_usage), so the platform's traffic costs a
replica a set lookup per record, not a decode and a Redis write (docs/benchmarks.md)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError, IllegalStateError
from redis.exceptions import RedisError

from tollgate.common.kafka import (
    EVENT_TYPE_HEADER,
    TOPIC_BILLING_ALERTS,
    TOPIC_TRAINING,
    TOPIC_USAGE,
    Brokers,
    commit_within,
    consume_with_renewal,
    make_consumer,
    renewed_consumer,
    start_when_available,
)
from tollgate.common.telemetry import header_value
from tollgate.gateway.realtime.events import RealtimeEvent, is_wanted, shape
from tollgate.gateway.realtime.metrics import RealtimeMetrics
from tollgate.gateway.realtime.store import EventStore

log = logging.getLogger(__name__)

GROUP_ID = "gateway-realtime"
TOPICS = (TOPIC_TRAINING, TOPIC_BILLING_ALERTS, TOPIC_USAGE)


def default_factory(brokers: Brokers) -> Callable[[], AIOKafkaConsumer]:
    def make() -> AIOKafkaConsumer:
        # latest: a new group starts at now (there is nobody to replay history to); after that the
        # committed offsets carry it across restarts. The broker gathers up to 64 KiB for at most
        # 100 ms per fetch (make_consumer's defaults): usage.v1 carries every request of the
        # platform, and a fetch (then a commit) per producer batch cost the gateway more CPU per
        # request than anything else the fan-in does (docs/benchmarks.md, "Gateway CPU per request")
        return make_consumer(brokers, GROUP_ID, *TOPICS, auto_offset_reset="latest")

    return make


class UsageWatch:
    """The organisations whose usage is watched, as of at most refresh_s ago."""

    def __init__(
        self, store: EventStore, refresh_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._refresh_s = refresh_s
        self._clock = clock
        self._orgs: set[str] = set()
        self._fetched_at = float("-inf")

    async def orgs(self) -> set[str]:
        """While Redis does not answer, the last set known: the batch's append waits for Redis
        anyway, and an error here must not end the fan-in (nor, with it, the gateway)."""
        if self._clock() - self._fetched_at >= self._refresh_s:
            try:
                self._orgs = await self._store.usage_watched()
            except (RedisError, OSError) as exc:
                log.warning("realtime usage watch refresh failed", extra={"error": repr(exc)})
            self._fetched_at = self._clock()
        return self._orgs


def select(records: Sequence[Any], watched: set[str]) -> list[RealtimeEvent]:
    """The realtime events of a batch: unwanted kinds and unwatched usage skipped before decoding."""
    events = []
    for record in records:
        if record.topic == TOPIC_USAGE and (record.key or b"").decode(errors="replace") not in watched:
            continue
        kind = header_value(record.headers, EVENT_TYPE_HEADER)
        if not is_wanted(record.topic, kind):
            continue
        event = shape(record.topic, kind, record.value)
        if event is None:
            log.warning("undecodable %s record skipped", record.topic, extra={"offset": record.offset})
        else:
            events.append(event)
    return events


class RealtimeFanIn:
    def __init__(
        self,
        factory: Callable[[], AIOKafkaConsumer],
        store: EventStore,
        watch: UsageWatch,
        metrics: RealtimeMetrics,
        *,
        retry_s: float = 2.0,
    ) -> None:
        self._factory = factory
        self._consumer = factory()
        self._store = store
        self._watch = watch
        self._metrics = metrics
        self._retry_s = retry_s
        self._assigned: set[Any] = set()

    async def run(self) -> None:
        try:
            await consume_with_renewal(
                self._consume, self._replace, pause_s=self._retry_s, renewed=self._metrics.renewals.inc
            )
        finally:
            with contextlib.suppress(Exception):
                await self._consumer.stop()

    async def _replace(self) -> None:
        self._consumer = await renewed_consumer(self._consumer, self._factory)
        self._assigned = set()

    async def _consume(self) -> None:
        await start_when_available(
            self._consumer, "realtime consumer", first_backoff_s=self._retry_s, max_backoff_s=self._retry_s
        )
        while True:
            await self.poll_once()

    async def poll_once(self) -> int:
        await self._pin_new_partitions()
        batches = await self._consumer.getmany(timeout_ms=1000, max_records=500)
        records = [r for recs in batches.values() for r in recs]
        if not records:
            return 0
        events = select(records, await self._watch.orgs())
        await self._append(events)
        self._metrics.records.inc(len(records))
        try:
            await commit_within(
                self._consumer, {tp: recs[-1].offset + 1 for tp, recs in batches.items() if recs}
            )
        except (CommitFailedError, IllegalStateError) as exc:
            # the partitions' new owner replays these records; the append dedupes them
            log.warning("realtime offset commit refused after rebalance", extra={"error": repr(exc)})
        return len(records)

    async def _pin_new_partitions(self) -> None:
        """A partition just given to this replica that the group never committed starts at "latest"
        (auto_offset_reset): that start is committed at once. Otherwise, if this replica died before
        anything arrived there, the partition's next owner would start at *its* "latest" and skip
        every fact published since — lost events after a failover."""
        assigned = self._consumer.assignment()
        if assigned == self._assigned:
            return
        fresh, self._assigned = assigned - self._assigned, set(assigned)
        try:
            starts = {
                tp: await self._consumer.position(tp)
                for tp in fresh
                if await self._consumer.committed(tp) is None
            }
            if starts:
                await commit_within(self._consumer, starts)
        except (CommitFailedError, IllegalStateError) as exc:
            # reassigned meanwhile: the partitions' next owner pins them
            log.warning("realtime start commit refused after rebalance", extra={"error": repr(exc)})
            self._assigned = set()

    async def _append(self, events: list[RealtimeEvent]) -> None:
        """Retries until Redis takes the batch: committing without it would lose the events."""
        while True:
            try:
                self._metrics.appended.inc(await self._store.append(events))
                return
            except (RedisError, OSError) as exc:
                log.warning("realtime append failed, retrying", extra={"error": repr(exc)})
                await asyncio.sleep(self._retry_s)
