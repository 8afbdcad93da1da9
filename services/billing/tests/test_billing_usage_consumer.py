"""The usage consumer's ordering: DB commit, then Redis, then offsets; bad records never block.

Kafka is faked (a collaborator recording commits); PostgreSQL and Redis are real.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from billing_helpers import new_org
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.billing.consumers.usage import UsageConsumer
from tollgate.billing.holds.store import HoldStore
from tollgate.billing.metrics import BillingMetrics
from tollgate.billing.wallets import repository as wallets
from tollgate.common.telemetry import kafka_headers_from_context
from tollgate.contracts.v1 import events_pb2

TP = TopicPartition("usage.v1", 0)
FAR = time.time() + 3600


class FakeKafka:
    def __init__(self) -> None:
        self.commits: list[dict[TopicPartition, int]] = []

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))


class FailingSettleStore(HoldStore):
    """Redis unreachable after the DB commit."""

    async def settle(self, settlements: Any) -> int:
        raise ConnectionError("redis down")


def record(offset: int, value: bytes) -> ConsumerRecord[Any, Any]:
    headers = [*kafka_headers_from_context(), ("event-type", b"UsageRecorded")]
    return ConsumerRecord("usage.v1", 0, offset, 0, 0, b"k", value, None, 1, len(value), headers)


def usage(event_id: str, org: str, cost: int, hold: str = "") -> bytes:
    return events_pb2.UsageRecorded(
        event_id=event_id, org_id=org, key_id=3, cost_micros=cost, hold_id=hold, status="ok"
    ).SerializeToString()


def value(metric: object) -> float:
    return metric._value.get()  # type: ignore[attr-defined, no-any-return]


async def balance(sessions: async_sessionmaker[AsyncSession], org: str) -> int:
    async with sessions() as s:
        return (await wallets.get_many(s, [org]))[org].balance_micros


async def test_batch_is_settled_holds_released_then_offsets_committed(
    sessions: async_sessionmaker[AsyncSession], store: HoldStore, metrics: BillingMetrics
) -> None:
    org = new_org()
    await store.sync_wallet(org, 1_000, 0)
    await store.reserve(org, "h1", 400, FAR)
    kafka = FakeKafka()
    consumer = UsageConsumer(kafka, sessions, store, metrics)  # type: ignore[arg-type]
    batch = {TP: [record(10, usage("e1", org, 250, "h1")), record(11, b"\xff\xfenot protobuf")]}
    await consumer.process(batch)
    assert kafka.commits == [{TP: 12}]  # past the undecodable record too
    assert value(metrics.usage_settled) == 1 and value(metrics.usage_undecodable) == 1
    cached = await store.read_wallet(org)
    assert cached is not None and (cached.balance_micros, cached.held_micros, cached.version) == (
        -250 + 0,
        0,
        1,
    )
    assert await balance(sessions, org) == -250  # the wallet row was created by the charge

    await consumer.process({TP: [record(10, usage("e1", org, 250, "h1"))]})  # redelivered
    assert value(metrics.usage_duplicates) == 1
    assert await balance(sessions, org) == -250


async def test_a_failure_after_the_db_commit_commits_no_offset_and_redelivery_repairs_redis(
    sessions: async_sessionmaker[AsyncSession],
    store: HoldStore,
    metrics: BillingMetrics,
    redis: Any,
    prefix: str,
) -> None:
    org = new_org()
    async with sessions.begin() as s:
        await wallets.apply_deltas(s, {org: (1_000, 1)})  # a DB wallet at balance 1000, version 1
    await store.sync_wallet(org, 1_000, 1)
    await store.reserve(org, "h1", 500, FAR)
    kafka = FakeKafka()
    broken = UsageConsumer(kafka, sessions, FailingSettleStore(redis, prefix=prefix), metrics)  # type: ignore[arg-type]
    batch = {TP: [record(5, usage("e-crash", org, 300, "h1"))]}
    with pytest.raises(ConnectionError):
        await broken.process(batch)
    assert kafka.commits == []
    assert await balance(sessions, org) == 700  # committed in the DB ...
    cached = await store.read_wallet(org)
    assert cached is not None and (cached.balance_micros, cached.held_micros) == (
        1_000,
        500,
    )  # ... not in Redis

    await UsageConsumer(kafka, sessions, store, metrics).process(batch)  # type: ignore[arg-type]
    assert kafka.commits == [{TP: 6}]
    cached = await store.read_wallet(org)
    assert cached is not None and (cached.balance_micros, cached.held_micros) == (700, 0)
    assert await balance(sessions, org) == 700  # charged once


def test_failpoint_exits_after_the_db_commit_before_any_offset_commit(database_url: str, prefix: str) -> None:
    org = new_org()
    script = textwrap.dedent(
        f"""
        import asyncio
        from aiokafka import ConsumerRecord, TopicPartition
        from prometheus_client import CollectorRegistry
        from redis.asyncio import Redis
        from tollgate.billing.consumers.usage import UsageConsumer
        from tollgate.billing.holds.store import HoldStore
        from tollgate.billing.metrics import BillingMetrics
        from tollgate.common.db import make_engine, make_sessionmaker
        from tollgate.contracts.v1 import events_pb2

        class Kafka:
            async def commit(self, offsets):
                print("COMMITTED", flush=True)

        async def main():
            event = events_pb2.UsageRecorded(event_id="fp-{org}", org_id="{org}", cost_micros=9)
            value = event.SerializeToString()
            rec = ConsumerRecord("usage.v1", 0, 1, 0, 0, b"k", value, None, 1, len(value), [])
            sessions = make_sessionmaker(make_engine("{database_url}"))
            store = HoldStore(Redis.from_url("redis://127.0.0.1:26479/0"), prefix="{prefix}")
            consumer = UsageConsumer(Kafka(), sessions, store, BillingMetrics(CollectorRegistry()),
                                     failpoint="crash_after_db_commit")
            await consumer.process({{TopicPartition("usage.v1", 0): [rec]}})
            print("SURVIVED", flush=True)

        asyncio.run(main())
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=os.environ
    )
    assert proc.returncode == 70, proc.stderr
    assert "COMMITTED" not in proc.stdout and "SURVIVED" not in proc.stdout
    # the scratch database's own URL (BILLING_TEST_PG_URL_TEMPLATE), not a fixed port
    check = subprocess.run(
        ["psql", database_url.replace("postgresql+psycopg://", "postgresql://"),
         "-tAc", f"SELECT balance_micros FROM wallets WHERE org_id = '{org}'"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert check.stdout.strip() == "-9"


class ConsumingKafka(FakeKafka):
    """A started consumer handing out `batches`, then nothing (or, `broken`, failing every poll as
    aiokafka does once its group coordination died)."""

    def __init__(self, batches: list[dict[TopicPartition, list[Any]]], broken: bool = False) -> None:
        super().__init__()
        self.batches, self.broken = batches, broken
        self.started = self.stopped = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> Any:
        if self.broken:
            raise KafkaError("Unexpected error during coordination RuntimeError('the handler is closed')")
        if not self.batches:
            await asyncio.sleep(3600)
        return self.batches.pop(0)

    def assignment(self) -> set[TopicPartition]:
        return set()


async def test_a_consumer_whose_coordination_broke_is_replaced_and_the_usage_still_settles(
    sessions: async_sessionmaker[AsyncSession], store: HoldStore, metrics: BillingMetrics
) -> None:
    """Seen in test_faults.py: Kafka SIGKILLed while the worker rejoined its group ended aiokafka's
    coordination for good; the worker exited and its usage waited until a restart by hand."""
    org = new_org()
    await store.sync_wallet(org, 1_000, 0)
    broken = ConsumingKafka([], broken=True)
    fresh = ConsumingKafka([{TP: [record(5, usage("renewed-1", org, 30))]}])
    consumer = UsageConsumer(
        broken,  # type: ignore[arg-type]
        sessions,
        store,
        metrics,
        retry_backoff_s=0.01,
        renew=lambda: fresh,  # type: ignore[arg-type, return-value]
    )
    task = asyncio.create_task(consumer.run())
    for _ in range(300):
        if fresh.commits:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert broken.stopped and fresh.started and fresh.stopped
    assert fresh.commits == [{TP: 6}] and await balance(sessions, org) == -30
    assert value(metrics.consumer_renewals) == 1
    alone = UsageConsumer(ConsumingKafka([], broken=True), sessions, store, metrics)  # type: ignore[arg-type]
    with pytest.raises(KafkaError):  # nothing to renew with: the failure ends run (and the process)
        await alone.run()


class HungCommitKafka(ConsumingKafka):
    """aiokafka after a broker restart in test_faults.py: the batch is fetched, its commit never
    returns (the coordinator lookup waits forever). A hung stop: libs/common's test_kafka_stalls."""

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        await asyncio.sleep(3600)


async def test_a_hung_offset_commit_renews_the_consumer_and_the_redelivery_is_not_charged_again(
    sessions: async_sessionmaker[AsyncSession], store: HoldStore, metrics: BillingMetrics
) -> None:
    org = new_org()
    await store.sync_wallet(org, 1_000, 0)
    batch = {TP: [record(8, usage("hung-commit-1", org, 40))]}
    hung = HungCommitKafka([batch])
    fresh = ConsumingKafka([batch])  # the new member re-reads from the last committed offset
    consumer = UsageConsumer(
        hung,  # type: ignore[arg-type]
        sessions,
        store,
        metrics,
        retry_backoff_s=0.01,
        renew=lambda: fresh,  # type: ignore[arg-type, return-value]
        commit_timeout_s=0.1,
    )
    renewals = value(metrics.consumer_renewals)
    task = asyncio.create_task(consumer.run())
    for _ in range(3000):
        if fresh.commits:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert hung.stopped and fresh.started
    assert fresh.commits == [{TP: 9}]
    assert await balance(sessions, org) == -40  # settled once, the redelivery skipped as a duplicate
    assert value(metrics.consumer_renewals) == renewals + 1
