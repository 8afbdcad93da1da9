from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CollectorRegistry

from tollgate.gateway.metrics import GatewayMetrics
from tollgate.gateway.usage.emitter import UsageEmitter
from tollgate.gateway.usage.events import OutgoingEvent


class FakeProducer:
    """Acks instantly while `up`; fails every send's delivery while down."""

    def __init__(self) -> None:
        self.up = True
        self.delivered: list[str] = []
        self.started = False

    async def start(self) -> None:
        if not self.up:
            raise ConnectionError("no broker")
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def send(self, topic: str, value: bytes, key: bytes, headers: list[Any]) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.up:
            self.delivered.append(value.decode())
            future.set_result(None)
        else:
            future.set_exception(ConnectionError("batch expired"))
        return future

    async def partitions_for(self, topic: str) -> set[int]:
        if not self.up:
            raise ConnectionError("no broker")
        return {0}


class FakeSpool:
    def __init__(self) -> None:
        self.entries: dict[bytes, OutgoingEvent] = {}
        self.seq = 0

    async def add(self, event: OutgoingEvent) -> None:
        self.seq += 1
        self.entries[f"{self.seq}-0".encode()] = event

    async def read(self, count: int) -> list[tuple[bytes, OutgoingEvent]]:
        return list(self.entries.items())[:count]

    async def delete(self, entry_ids: list[bytes]) -> None:
        for entry_id in entry_ids:
            del self.entries[entry_id]

    async def length(self) -> int:
        return len(self.entries)


def event(n: int) -> OutgoingEvent:
    return OutgoingEvent(f"req_{n}", b"org-1", f"ev{n}".encode(), [("event-type", b"UsageRecorded")])


def make(producer: FakeProducer, spool: FakeSpool) -> tuple[UsageEmitter, GatewayMetrics]:
    metrics = GatewayMetrics(CollectorRegistry())
    emitter = UsageEmitter(lambda: producer, spool, metrics, send_timeout_s=0.5, drain_interval_s=0.01)
    return emitter, metrics


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.01)


async def test_events_reach_kafka_in_the_background() -> None:
    producer, spool = FakeProducer(), FakeSpool()
    emitter, metrics = make(producer, spool)
    runner = asyncio.create_task(emitter.run())
    await settle()
    emitter.emit(event(1))
    await settle()
    assert producer.delivered == ["ev1"]
    assert metrics.usage_sent._value.get() == 1
    assert spool.entries == {}
    runner.cancel()
    await emitter.close()


async def test_failed_delivery_spools_then_drains_once_kafka_is_back() -> None:
    producer, spool = FakeProducer(), FakeSpool()
    emitter, metrics = make(producer, spool)
    runner = asyncio.create_task(emitter.run())
    await settle()
    producer.up = False
    emitter.emit(event(1))  # delivery fails -> spooled, kafka marked down
    await settle()
    emitter.emit(event(2))  # known down -> straight to the spool
    await settle()
    assert [e.event_id for e in spool.entries.values()] == ["req_1", "req_2"]
    assert not emitter.kafka_up
    assert producer.delivered == []
    producer.up = True
    await settle()
    assert producer.delivered == ["ev1", "ev2"]
    assert spool.entries == {}
    assert emitter.kafka_up
    assert metrics.usage_spooled._value.get() == 2
    assert metrics.usage_drained._value.get() == 2
    runner.cancel()
    await emitter.close()


async def test_drain_deletes_only_what_the_broker_acked() -> None:
    producer, spool = FakeProducer(), FakeSpool()
    emitter, _ = make(producer, spool)
    await spool.add(event(1))
    await spool.add(event(2))
    emitter._producer = producer
    producer.up = False
    assert await emitter.drain_once() == 0
    assert len(spool.entries) == 2
    producer.up = True
    assert await emitter.drain_once() == 2
    assert spool.entries == {}


async def test_kafka_unreachable_at_start_spools_and_close_flushes_the_queue() -> None:
    producer, spool = FakeProducer(), FakeSpool()
    producer.up = False
    emitter, _ = make(producer, spool)
    runner = asyncio.create_task(emitter.run())
    await settle()
    runner.cancel()
    emitter.emit(event(1))  # emitted while shutting down: close() must still place it
    await emitter.close()
    assert [e.event_id for e in spool.entries.values()] == ["req_1"]
