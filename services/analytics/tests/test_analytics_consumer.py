"""The usage.v1 consumer with a fake Kafka consumer and the real service on a scratch database."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError
from analytics_testkit import T0, encode_usage, make_fact
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from tollgate.analytics.consumers.usage import UsageConsumer, decode_usage
from tollgate.analytics.metrics import AnalyticsMetrics
from tollgate.analytics.usage.models import UsageDaily, UsageEvent
from tollgate.analytics.usage.repository import UsageRepository
from tollgate.analytics.usage.schemas import StoreResult, UsageFact
from tollgate.analytics.usage.service import UsageService
from tollgate.contracts.v1 import events_pb2

TP0 = TopicPartition("usage.v1", 0)
TP1 = TopicPartition("usage.v1", 1)
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


@dataclass
class Record:
    partition: int
    offset: int
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    topic: str = "usage.v1"
    timestamp: int = 1_700_000_000_000


def usage_record(partition: int, offset: int, fact: UsageFact, **headers: str) -> Record:
    hdrs = [("event-type", b"UsageRecorded"), *((k, v.encode()) for k, v in headers.items())]
    return Record(partition, offset, encode_usage(fact), hdrs)


class FakeKafka:
    """Hands out prepared batches; records every commit together with what the DB held at that time."""

    def __init__(self, batches: list[dict[TopicPartition, list[Record]]], on_commit: Any = None) -> None:
        self.batches = batches
        self.commits: list[dict[TopicPartition, int]] = []
        self.on_commit = on_commit
        self.started = self.stopped = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def getmany(self, *_: Any, timeout_ms: int = 0, max_records: int | None = None) -> Any:
        if not self.batches:
            await asyncio.sleep(3600)
        return self.batches.pop(0)

    async def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        if self.on_commit is not None:
            await self.on_commit()
        self.commits.append(dict(offsets or {}))


class FlakyRecorder:
    """Fails the first `failures` transactions like a dropped database connection would."""

    def __init__(self, inner: UsageService, failures: int) -> None:
        self.inner = inner
        self.failures = failures

    async def record(self, session: Any, facts: Sequence[UsageFact]) -> StoreResult:
        if self.failures:
            self.failures -= 1
            raise OperationalError("INSERT", {}, ConnectionResetError("connection lost"))
        return await self.inner.record(session, facts)


def _consumer(kafka: FakeKafka, sessions: Any, recorder: Any = None, tracer: Any = None):
    registry = CollectorRegistry()
    consumer = UsageConsumer(
        kafka,
        sessions,
        recorder or UsageService(UsageRepository()),
        AnalyticsMetrics(registry),
        max_backoff_s=0.01,
        tracer=tracer,
    )
    return consumer, registry


async def _count(sessions: Any) -> tuple[int, int]:
    async with sessions() as session:
        events = await session.scalar(select(func.count()).select_from(UsageEvent))
        requests = await session.scalar(select(func.coalesce(func.sum(UsageDaily.requests), 0)))
    return int(events), int(requests)


async def test_batch_is_stored_then_offsets_committed_per_partition(sessions) -> None:
    seen_at_commit: list[tuple[int, int]] = []

    async def snapshot() -> None:
        seen_at_commit.append(await _count(sessions))

    kafka = FakeKafka(
        [
            {
                TP0: [usage_record(0, 10, make_fact("e1")), usage_record(0, 11, make_fact("e2"))],
                TP1: [usage_record(1, 4, make_fact("e3", org_id="org_b"))],
            }
        ],
        on_commit=snapshot,
    )
    consumer, registry = _consumer(kafka, sessions)

    assert await consumer.poll_once() == 3

    assert kafka.commits == [{TP0: 12, TP1: 5}]
    assert seen_at_commit == [(3, 3)]  # the facts were committed before the offsets
    assert registry.get_sample_value("analytics_usage_events_stored_total") == 3


async def test_redelivered_records_count_as_duplicates_and_are_committed(sessions) -> None:
    batch = {TP0: [usage_record(0, 0, make_fact("e1")), usage_record(0, 1, make_fact("e2"))]}
    kafka = FakeKafka([batch, {TP0: [*batch[TP0], usage_record(0, 2, make_fact("e9"))]}])
    consumer, registry = _consumer(kafka, sessions)

    await consumer.poll_once()
    await consumer.poll_once()

    assert await _count(sessions) == (3, 3)
    assert registry.get_sample_value("analytics_usage_events_duplicate_total") == 2
    assert kafka.commits[-1] == {TP0: 3}


async def test_undecodable_and_foreign_records_are_skipped_counted_and_committed(sessions) -> None:
    foreign = usage_record(0, 2, make_fact("f"))
    foreign.headers = [("event-type", b"ApiKeyChanged")]
    kafka = FakeKafka(
        [
            {
                TP0: [
                    Record(0, 0, b"\xff\xff\xff not protobuf"),
                    usage_record(0, 1, make_fact("")),
                    foreign,
                    usage_record(0, 3, make_fact("ok")),
                ]
            }
        ]
    )
    consumer, registry = _consumer(kafka, sessions)

    await consumer.poll_once()

    assert await _count(sessions) == (1, 1)
    assert registry.get_sample_value("analytics_usage_events_invalid_total") == 3
    assert kafka.commits == [{TP0: 4}]


async def test_database_failure_is_retried_and_nothing_is_committed_before_it_succeeds(sessions) -> None:
    commits_before_store: list[int] = []

    async def check() -> None:
        commits_before_store.append((await _count(sessions))[0])

    kafka = FakeKafka([{TP0: [usage_record(0, 0, make_fact("e1"))]}], on_commit=check)
    recorder = FlakyRecorder(UsageService(UsageRepository()), failures=2)
    consumer, registry = _consumer(kafka, sessions, recorder)

    await consumer.poll_once()

    assert registry.get_sample_value("analytics_usage_store_failures_total") == 2
    assert commits_before_store == [1]
    assert kafka.commits == [{TP0: 1}]


async def test_consume_span_continues_the_producers_trace(sessions) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    kafka = FakeKafka([{TP0: [usage_record(0, 0, make_fact("e1"), traceparent=TRACEPARENT)]}])
    consumer, _ = _consumer(kafka, sessions, tracer=provider.get_tracer("test"))

    await consumer.poll_once()

    spans = {s.name: s for s in exporter.get_finished_spans()}
    consume = spans["usage.v1 process"]
    assert consume.kind is SpanKind.CONSUMER
    assert format(consume.context.trace_id, "032x") == TRACE_ID
    assert consume.parent is not None and format(consume.parent.span_id, "016x") == "b7ad6b7169203331"
    store = spans["analytics.store_usage"]
    assert [link.context.span_id for link in store.links] == [consume.context.span_id]
    assert trace.get_current_span().get_span_context().is_valid is False


async def test_run_retries_start_and_stops_the_consumer_when_cancelled(sessions) -> None:
    kafka = FakeKafka([{TP0: [usage_record(0, 0, make_fact("e1"))]}])
    attempts = {"n": 0}
    real_start = kafka.start

    async def flaky_start() -> None:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise KafkaConnectionError("broker down")
        await real_start()

    kafka.start = flaky_start  # type: ignore[method-assign]
    consumer, _ = _consumer(kafka, sessions)

    task = asyncio.create_task(consumer.run())
    for _ in range(200):
        if kafka.commits:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    assert attempts["n"] == 3
    assert kafka.commits == [{TP0: 1}]
    assert kafka.stopped


def test_decode_falls_back_to_the_record_time_when_the_event_has_no_finish_time() -> None:
    raw = events_pb2.UsageRecorded(event_id="e", org_id="o", model="m").SerializeToString()

    fact = decode_usage(raw, fallback_ts_ms=int(T0.timestamp() * 1000))

    assert fact is not None and fact.created_at == T0


def test_a_record_whose_labels_could_never_be_stored_is_invalid_not_retried() -> None:
    """A 40 kB model name overflows the daily rollup's btree key: the batch would fail for ever."""
    ok = events_pb2.UsageRecorded(event_id="e", org_id="o", model="m" * 512, provider="p")
    assert decode_usage(ok.SerializeToString(), fallback_ts_ms=0) is not None
    for oversized in (
        events_pb2.UsageRecorded(event_id="e", org_id="o", model="m" * 40_000),
        events_pb2.UsageRecorded(event_id="e", org_id="o", model="m", provider="p" * 513),
        events_pb2.UsageRecorded(event_id="e" * 129, org_id="o", model="m"),
        events_pb2.UsageRecorded(event_id="e", org_id="o", user_id="u" * 129, model="m"),
    ):
        assert decode_usage(oversized.SerializeToString(), fallback_ts_ms=0) is None


class BrokenKafka(FakeKafka):
    """A consumer whose group coordination died: aiokafka raises it from every getmany."""

    async def getmany(self, *_: Any, timeout_ms: int = 0, max_records: int | None = None) -> Any:
        raise KafkaError("Unexpected error during coordination RuntimeError('the handler is closed')")


async def test_a_consumer_whose_coordination_broke_is_replaced_and_the_next_one_consumes(sessions) -> None:
    broken = BrokenKafka([])
    fresh = FakeKafka([{TP0: [usage_record(0, 0, make_fact("renewed-1"))]}])
    registry = CollectorRegistry()
    consumer = UsageConsumer(
        broken,
        sessions,
        UsageService(UsageRepository()),
        AnalyticsMetrics(registry),
        max_backoff_s=0.01,
        renew=lambda: fresh,
    )
    task = asyncio.create_task(consumer.run())
    for _ in range(200):
        if fresh.commits:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert broken.stopped and fresh.started and fresh.stopped
    assert fresh.commits == [{TP0: 1}]
    assert registry.get_sample_value("analytics_usage_consumer_renewals_total") == 1
    without_renewal, _ = _consumer(BrokenKafka([]), sessions)
    with pytest.raises(KafkaError):  # nothing to renew with: the failure ends run (and the process)
        await without_renewal.run()
