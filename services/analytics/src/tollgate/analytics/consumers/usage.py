"""Consumer of `usage.v1` (group analytics-usage): decode, store in one transaction, then commit offsets.

Offsets are committed only after the database commit, and storage is idempotent on the event id, so a
crash between the two replays records that are then counted as duplicates, never twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Protocol

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from google.protobuf.message import DecodeError
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, StatusCode, Tracer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.analytics.metrics import AnalyticsMetrics
from tollgate.analytics.usage.schemas import StoreResult, UsageFact
from tollgate.common.consumer_lag import ConsumerLag
from tollgate.common.kafka import (
    EVENT_TYPE_HEADER,
    commit_within,
    consume_with_renewal,
    renewed_consumer,
    start_when_available,
)
from tollgate.common.stall_watch import StallWatch
from tollgate.common.telemetry import context_from_kafka_headers, header_value
from tollgate.contracts.v1 import events_pb2

log = logging.getLogger(__name__)

EVENT_TYPE = "UsageRecorded"
_MAX_LINKS = 64  # a batch span links to at most this many producer spans


class KafkaConsumer(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = ..., max_records: int | None = ...
    ) -> Mapping[TopicPartition, Sequence[Any]]: ...
    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None: ...
    # read by ConsumerLag (tollgate.common.consumer_lag.GroupMember)
    def assignment(self) -> Collection[TopicPartition]: ...
    async def end_offsets(self, partitions: list[TopicPartition]) -> Mapping[TopicPartition, int]: ...
    async def beginning_offsets(self, partitions: list[TopicPartition]) -> Mapping[TopicPartition, int]: ...
    async def committed(self, partition: TopicPartition) -> int | None: ...


class UsageRecorder(Protocol):
    async def record(self, session: AsyncSession, facts: Sequence[UsageFact]) -> StoreResult: ...


# What a label of a usage fact may hold, in characters. The daily rollup's primary key (org, day,
# model) is a btree entry, which PostgreSQL caps at 2,704 bytes: a record past these bounds could never
# be stored, and retrying its batch for ever would stop the partition. The gateway's names are far
# shorter (catalog names <= 200, fine-tuned names a few dozen characters past their base).
MAX_ID_CHARS = 128
MAX_NAME_CHARS = 512


def _oversized(ev: events_pb2.UsageRecorded) -> bool:
    ids = (ev.event_id, ev.org_id, ev.user_id, ev.status, ev.operation)
    return any(len(v) > MAX_ID_CHARS for v in ids) or any(
        len(v) > MAX_NAME_CHARS for v in (ev.model, ev.provider)
    )


def decode_usage(value: bytes | None, fallback_ts_ms: int) -> UsageFact | None:
    """The fact a record carries, or None when it is not a usable UsageRecorded."""
    if not value:
        return None
    try:
        ev = events_pb2.UsageRecorded.FromString(value)
    except DecodeError:
        return None
    if not ev.event_id or not ev.org_id or _oversized(ev):
        return None
    finished_ms = ev.finished_at_unix_ms or fallback_ts_ms
    return UsageFact(
        event_id=ev.event_id,
        org_id=ev.org_id,
        key_id=ev.key_id,
        user_id=ev.user_id,
        model=ev.model,
        provider=ev.provider,
        tokens_in=ev.tokens_in,
        tokens_out=ev.tokens_out,
        cost_micros=ev.cost_micros,
        latency_ms=ev.latency_ms,
        status=ev.status,
        stream=ev.stream,
        created_at=dt.datetime.fromtimestamp(finished_ms / 1000, dt.UTC),
        tokens_cached_in=ev.tokens_cached_in,
        tokens_cache_write=ev.tokens_cache_write,
        tokens_reasoning=ev.tokens_reasoning,
        operation=ev.operation or "chat",
        endpoint=ev.endpoint,
    )


class UsageConsumer:
    def __init__(
        self,
        consumer: KafkaConsumer,
        sessions: async_sessionmaker[AsyncSession],
        recorder: UsageRecorder,
        metrics: AnalyticsMetrics,
        *,
        max_records: int = 500,
        timeout_ms: int = 500,
        max_backoff_s: float = 5.0,
        tracer: Tracer | None = None,
        renew: Callable[[], KafkaConsumer] | None = None,
        watch: StallWatch | None = None,
    ) -> None:
        """`renew`: a new consumer of the same group, to replace one whose group coordination broke
        or that `watch` found stalled (without `renew` such a failure ends `run`)."""
        self._consumer = consumer
        self._watch = watch or StallWatch.off()
        self._renew = renew
        self._sessions = sessions
        self._recorder = recorder
        self._metrics = metrics
        self._max_records = max_records
        self._timeout_ms = timeout_ms
        self._max_backoff_s = max_backoff_s
        self._tracer = tracer or trace.get_tracer("tollgate.analytics.consumer")

    async def run(self) -> None:
        """Background task: runs until cancelled. Kafka being down at start is waited out, not fatal;
        a consumer whose group coordination failed (aiokafka ends it for good) is replaced by a new
        one, which resumes from the committed offsets (stored facts come back as duplicates)."""
        # measured beside the poll loop, so a batch retried through a database outage shows as lag
        lag = asyncio.create_task(ConsumerLag(self._metrics.consumer_lag, lambda: self._consumer).run())
        try:
            await consume_with_renewal(
                self._consume,
                self._replace if self._renew is not None else None,
                pause_s=self._max_backoff_s,
                renewed=self._metrics.consumer_renewals.inc,
                watch=self._watch.waiter,
            )
        finally:
            lag.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lag
            await self._consumer.stop()

    async def _consume(self) -> None:
        await self._start()
        while True:
            await self.poll_once()

    async def _replace(self) -> None:
        """A new consumer of the same group for one whose coordination aiokafka ended."""
        assert self._renew is not None
        self._consumer = await renewed_consumer(self._consumer, self._renew)

    async def _start(self) -> None:
        await start_when_available(
            self._consumer, "usage consumer", first_backoff_s=0.5, max_backoff_s=self._max_backoff_s
        )

    async def poll_once(self) -> int:
        """One batch: returns how many records it consumed."""
        batches = await self._consumer.getmany(timeout_ms=self._timeout_ms, max_records=self._max_records)
        records = [r for recs in batches.values() for r in recs]
        if not records:
            return 0
        with self._watch.busy():
            return await self._process(batches, records)

    async def _process(self, batches: Mapping[TopicPartition, Sequence[Any]], records: list[Any]) -> int:
        started = time.perf_counter()
        # One span per batch, not per record (a span costs about as much as storing the record):
        # parented on the first record's trace so a lone request's trace continues here, and linked
        # to the other records' producer spans.
        contexts = [context_from_kafka_headers(r.headers) for r in records[:_MAX_LINKS]]
        links = [
            Link(ctx) for c in contexts[1:] if (ctx := trace.get_current_span(c).get_span_context()).is_valid
        ]
        with self._tracer.start_as_current_span(
            f"{records[0].topic} process",
            context=contexts[0],
            kind=SpanKind.CONSUMER,
            links=links,
            attributes={"messaging.system": "kafka", "messaging.batch.message_count": len(records)},
        ) as span:
            facts = [fact for record in records if (fact := self._decode(record)) is not None]
            if len(facts) < len(records):
                span.set_attribute("tollgate.analytics.invalid", len(records) - len(facts))
            result = await self._store(facts, [span])
            span.set_attribute("tollgate.analytics.batch_inserted", result.inserted)
        await self._commit(batches)
        self._metrics.events_stored.inc(result.inserted)
        self._metrics.events_duplicate.inc(result.duplicates)
        if result.out_of_window:
            self._metrics.events_out_of_window.inc(result.out_of_window)
            log.warning(
                "skipped usage events outside the stored window", extra={"count": result.out_of_window}
            )
        self._metrics.batch_seconds.observe(time.perf_counter() - started)
        return len(records)

    def _decode(self, record: Any) -> UsageFact | None:
        event_type = header_value(record.headers, EVENT_TYPE_HEADER)
        fact = None if event_type not in (None, EVENT_TYPE) else decode_usage(record.value, record.timestamp)
        if fact is None:
            self._metrics.events_invalid.inc()
            log.warning(
                "skipping invalid usage record",
                extra={"partition": record.partition, "offset": record.offset, "event_type": event_type},
            )
        return fact

    async def _store(self, facts: Sequence[UsageFact], record_spans: Sequence[Span]) -> StoreResult:
        """Retries until the transaction commits: skipping a batch would lose usage facts."""
        if not facts:
            return StoreResult(inserted=0, duplicates=0)
        links = [Link(s.get_span_context()) for s in record_spans]
        backoff = 0.2
        while True:
            with self._tracer.start_as_current_span("analytics.store_usage", links=links) as span:
                try:
                    async with self._sessions() as session, session.begin():
                        result = await self._recorder.record(session, facts)
                    span.set_attribute("tollgate.analytics.inserted", result.inserted)
                    span.set_attribute("tollgate.analytics.duplicates", result.duplicates)
                    return result
                except (SQLAlchemyError, OSError) as exc:
                    span.record_exception(exc)
                    span.set_status(StatusCode.ERROR, "store failed")
                    self._metrics.store_failures.inc()
                    log.warning("storing usage batch failed, retrying", extra={"error": repr(exc)})
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff_s)

    async def _commit(self, batches: Mapping[TopicPartition, Sequence[Any]]) -> None:
        offsets = {tp: recs[-1].offset + 1 for tp, recs in batches.items() if recs}
        try:
            await commit_within(self._consumer, offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # A rebalance took the partitions: their new owner replays these records, deduped by id.
            log.warning("offset commit refused after rebalance", extra={"error": repr(exc)})
