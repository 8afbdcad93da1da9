"""ConsumerLag: end offset minus the group's committed offset per partition, dropped for partitions a
rebalance took away, refreshed on its own timer whatever the poll loop is doing."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry, Gauge

from tollgate.common.consumer_lag import ConsumerLag

TOPIC = "usage.v1"


class Member:
    """A group member as the broker describes it: assigned partitions and their offsets."""

    def __init__(self) -> None:
        self.assigned: set[TopicPartition] = set()
        self.ends: dict[TopicPartition, int] = {}
        self.starts: dict[TopicPartition, int] = {}
        self.commits: dict[TopicPartition, int] = {}
        self.broker_up = True

    def assignment(self) -> Collection[TopicPartition]:
        return set(self.assigned)

    async def end_offsets(self, partitions: list[TopicPartition]) -> Mapping[TopicPartition, int]:
        if not self.broker_up:
            raise ConnectionError("broker away")
        return {tp: self.ends[tp] for tp in partitions}

    async def beginning_offsets(self, partitions: list[TopicPartition]) -> Mapping[TopicPartition, int]:
        return {tp: self.starts.get(tp, 0) for tp in partitions}

    async def committed(self, partition: TopicPartition) -> int | None:
        return self.commits.get(partition)


def gauge() -> tuple[CollectorRegistry, Gauge]:
    registry = CollectorRegistry()
    return registry, Gauge("lag", "lag", ["partition"], registry=registry)


def lag_of(registry: CollectorRegistry, partition: int) -> float | None:
    return registry.get_sample_value("lag", {"partition": str(partition)})


async def test_lag_is_end_minus_committed_and_all_the_partition_holds_before_a_commit() -> None:
    registry, lag = gauge()
    member = Member()
    p0, p1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
    member.assigned = {p0, p1}
    member.ends = {p0: 120, p1: 40}
    member.starts = {p1: 15}  # retention removed the first 15 records
    member.commits = {p0: 100}
    await ConsumerLag(lag, lambda: member).refresh()
    assert (lag_of(registry, 0), lag_of(registry, 1)) == (20, 25)


async def test_a_stuck_consumer_shows_growing_lag_and_a_rebalance_drops_what_it_lost() -> None:
    registry, lag = gauge()
    member = Member()
    p0, p1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
    member.assigned = {p0, p1}
    member.ends = {p0: 10, p1: 10}
    member.commits = {p0: 10, p1: 10}
    measuring = asyncio.create_task(ConsumerLag(lag, lambda: member, interval_s=0.01).run())
    try:
        await asyncio.sleep(0.05)
        assert lag_of(registry, 0) == 0
        # the database is away: nothing is committed while the producers go on
        member.ends = {p0: 500, p1: 10}
        for _ in range(100):
            if lag_of(registry, 0) == 490:
                break
            await asyncio.sleep(0.01)
        assert lag_of(registry, 0) == 490
        # the broker is away for a moment: the last values stay, measuring goes on afterwards
        member.broker_up = False
        await asyncio.sleep(0.05)
        assert lag_of(registry, 0) == 490
        member.broker_up = True
        # a rebalance gives partition 1 to another member: it leaves this member's gauge
        member.assigned = {p0}
        for _ in range(100):
            if lag_of(registry, 1) is None:
                break
            await asyncio.sleep(0.01)
        assert lag_of(registry, 1) is None and lag_of(registry, 0) == 490
    finally:
        measuring.cancel()


async def test_a_renewed_consumer_is_the_one_measured() -> None:
    registry, lag = gauge()
    first, second = Member(), Member()
    p0 = TopicPartition(TOPIC, 0)
    first.assigned, first.ends, first.commits = {p0}, {p0: 5}, {p0: 1}
    second.assigned, second.ends, second.commits = {p0}, {p0: 9}, {p0: 9}
    current = [first]
    measure = ConsumerLag(lag, lambda: current[0])
    await measure.refresh()
    assert lag_of(registry, 0) == 4
    current[0] = second
    await measure.refresh()
    assert lag_of(registry, 0) == 0
