"""Consumes usage.v1: settles each batch in one DB transaction, then Redis, then commits offsets.

Order matters for money: the DB commit (unique event-id rows) comes first, so a crash at any later
point only causes redelivery, which the settlement rows turn into counted duplicates; offsets are
committed last, so nothing is acknowledged that was not applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from google.protobuf.message import DecodeError
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.billing.holds.store import HoldStore
from tollgate.billing.metrics import BillingMetrics
from tollgate.billing.settlements import service as settlements
from tollgate.billing.settlements.schemas import InvalidUsageEvent, UsageCharge
from tollgate.common.consumer_lag import ConsumerLag
from tollgate.common.kafka import (
    COMMIT_STALL_S,
    commit_within,
    consume_with_renewal,
    renewed_consumer,
    start_when_available,
)
from tollgate.common.stall_watch import StallWatch
from tollgate.common.telemetry import context_from_kafka_headers
from tollgate.contracts.v1 import events_pb2

log = logging.getLogger(__name__)

FAILPOINT_CRASH_AFTER_DB_COMMIT = "crash_after_db_commit"
_MAX_LINKS = 64  # a batch span links to at most this many producer spans


def decode(records: Sequence[ConsumerRecord[Any, Any]], metrics: BillingMetrics) -> list[UsageCharge]:
    """Decodes what can be settled; undecodable or invalid records are logged, counted and skipped
    (their offsets are committed with the batch) so one bad record never blocks a partition."""
    charges = []
    for record in records:
        try:
            event = events_pb2.UsageRecorded.FromString(record.value or b"")
            charges.append(UsageCharge.from_event(event))
        except (DecodeError, InvalidUsageEvent) as exc:
            metrics.usage_undecodable.inc()
            log.error(
                "skipping undecodable usage record",
                extra={"partition": record.partition, "offset": record.offset, "error": str(exc)},
            )
    return charges


class UsageConsumer:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        sessions: async_sessionmaker[AsyncSession],
        store: HoldStore,
        metrics: BillingMetrics,
        *,
        max_records: int = 1000,
        failpoint: str = "",
        retry_backoff_s: float = 1.0,
        renew: Callable[[], AIOKafkaConsumer] | None = None,
        commit_timeout_s: float = COMMIT_STALL_S,
        watch: StallWatch | None = None,
    ) -> None:
        """`renew`: a new consumer of the same group, to replace one whose group coordination broke,
        whose offset commit hung for commit_timeout_s or that `watch` found stalled (without `renew`
        such a failure ends `run`)."""
        self._consumer = consumer
        self._watch = watch or StallWatch.off()
        self._renew = renew
        self._sessions = sessions
        self._store = store
        self._metrics = metrics
        self._max_records = max_records
        self._crash_after_db_commit = failpoint == FAILPOINT_CRASH_AFTER_DB_COMMIT
        self._retry_backoff_s = retry_backoff_s
        self._commit_timeout_s = commit_timeout_s
        self._tracer = trace.get_tracer("tollgate.billing.consumer")

    async def run(self) -> None:
        # measured beside the poll loop, so a batch retried through a database outage shows as lag
        lag = asyncio.create_task(ConsumerLag(self._metrics.consumer_lag, lambda: self._consumer).run())
        try:
            await consume_with_renewal(
                self._consume,
                self._replace if self._renew is not None else None,
                pause_s=self._retry_backoff_s,
                renewed=self._metrics.consumer_renewals.inc,
                watch=self._watch.waiter,
            )
        finally:
            lag.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lag
            await self._consumer.stop()

    async def _replace(self) -> None:
        """A new consumer of the same group for one whose coordination aiokafka ended."""
        assert self._renew is not None
        self._consumer = await renewed_consumer(self._consumer, self._renew)

    async def _consume(self) -> None:
        await self._start()
        while True:
            batches = await self._consumer.getmany(timeout_ms=1000, max_records=self._max_records)
            records = [r for part in batches.values() for r in part]
            if records:
                with self._watch.busy():
                    await self._process_with_retry(batches)

    async def _start(self) -> None:
        """Waits for Kafka instead of failing: Reserve (the hot path) must stay up without it."""
        await start_when_available(
            self._consumer, "usage consumer", first_backoff_s=self._retry_backoff_s, max_backoff_s=30.0
        )

    async def _process_with_retry(
        self, batches: dict[TopicPartition, list[ConsumerRecord[Any, Any]]]
    ) -> None:
        backoff = self._retry_backoff_s
        while True:
            try:
                await self.process(batches)
                return
            except (asyncio.CancelledError, SystemExit, KafkaError):
                raise  # Kafka's own failures: the consumer is renewed (run), not the batch retried
            except Exception:
                # Nothing was acknowledged: retry the same records (already-settled ones come back
                # as duplicates). Rewinding would be equivalent but loses the fetched batch.
                self._metrics.batch_failures.inc()
                log.exception("usage batch failed; retrying", extra={"backoff_s": backoff})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    async def process(self, batches: dict[TopicPartition, list[ConsumerRecord[Any, Any]]]) -> None:
        records = [r for part in batches.values() for r in part]
        # One span per batch, parented on the first record's trace (a lone request's trace goes on
        # through its settlement, PostgreSQL and Redis calls included) and linked to the others.
        contexts = [context_from_kafka_headers(r.headers) for r in records[:_MAX_LINKS]]
        links = [
            Link(span_ctx)
            for c in contexts[1:]
            if (span_ctx := trace.get_current_span(c).get_span_context()).is_valid
        ]
        with self._tracer.start_as_current_span(
            "usage.v1 process",
            context=contexts[0] if contexts else None,
            kind=SpanKind.CONSUMER,
            links=links,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.batch.message_count": len(records),
            },
        ):
            charges = decode(records, self._metrics)
            async with self._sessions.begin() as session:
                outcome = await settlements.settle_batch(session, charges)
            if self._crash_after_db_commit:
                log.critical("failpoint crash_after_db_commit: exiting before the offset commit")
                os._exit(70)
            released = await self._store.settle(outcome.cache_updates)
            await self._commit(batches)

        self._metrics.usage_settled.inc(outcome.settled)
        self._metrics.usage_charged_micros.inc(outcome.charged_micros)
        self._metrics.holds_released.inc(released)
        if outcome.duplicates:
            self._metrics.usage_duplicates.inc(outcome.duplicates)
            log.info("duplicate usage events skipped", extra={"count": outcome.duplicates})

    async def _commit(self, batches: dict[TopicPartition, list[ConsumerRecord[Any, Any]]]) -> None:
        offsets = {tp: part[-1].offset + 1 for tp, part in batches.items() if part}
        try:
            await commit_within(self._consumer, offsets, timeout_s=self._commit_timeout_s)
        except (CommitFailedError, IllegalStateError):
            # A rebalance took the partitions: their new owner re-reads them and dedupes.
            log.warning("offset commit lost to a rebalance; records will be redelivered")
