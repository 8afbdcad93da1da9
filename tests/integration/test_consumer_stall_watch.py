"""A group member that stops taking records without failing is found and replaced, on real Kafka.

The stall is aiokafka's own: a member whose partitions are paused fetches nothing and raises nothing,
which is what a billing worker's consumer looked like when it stalled in test_faults.py. The watch
(tollgate.common.stall_watch, reading the group from the brokers with clients of its own) must see
records waiting that nobody takes, and consume_with_renewal must put a new member in its place, which
takes and commits them all.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiokafka.admin import NewTopic

from tollgate.common.kafka import (
    consume_with_renewal,
    make_admin,
    make_consumer,
    make_producer,
    renewed_consumer,
)
from tollgate.common.stall_watch import BrokerGroupOffsets, StallWatch
from tollgate.devstack.stack import StackConfig

RECORDS = 40


async def _create_topic(bootstrap: str, topic: str) -> None:
    admin = make_admin(bootstrap, "stall-watch-test")
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name=topic, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str) -> None:
    producer = make_producer(bootstrap, "stall-watch-test")
    await producer.start()
    try:
        for n in range(RECORDS):
            await producer.send(topic, f"record-{n}".encode(), key=f"k{n % 7}".encode())
        await producer.flush()
    finally:
        await producer.stop()


async def test_a_member_that_takes_nothing_is_renewed_and_its_successor_takes_everything(
    config: StackConfig,
) -> None:
    bootstrap = config.kafka_bootstrap
    topic, group = f"stall-watch-{uuid.uuid4().hex[:8]}", f"stall-watch-{uuid.uuid4().hex[:8]}"
    await _create_topic(bootstrap, topic)
    await _produce(bootstrap, topic)

    def new_member() -> Any:
        return make_consumer(bootstrap, group, topic, fetch_min_bytes=1, fetch_max_wait_ms=50)

    offsets = BrokerGroupOffsets(bootstrap, group, (topic,))
    watch = StallWatch(offsets, stall_s=3, interval_s=0.5)
    members = [new_member()]
    stalled_member = members[0]
    taken: list[bytes] = []
    renewals: list[int] = []

    async def consume() -> None:
        member = members[-1]
        await member.start()
        while not member.assignment():
            await member.getmany(timeout_ms=200)
        if member is stalled_member:
            member.pause(*member.assignment())  # from here it fetches nothing and fails nothing
        while len(taken) < RECORDS:
            batches = await member.getmany(timeout_ms=200)
            for tp, records in batches.items():
                with watch.busy():
                    taken.extend(r.value for r in records)
                    await member.commit({tp: records[-1].offset + 1})

    async def renew() -> None:
        members.append(await renewed_consumer(members[-1], new_member))

    try:
        stalled_at = await offsets.read()
        assert stalled_at.lag == RECORDS  # nothing committed yet: the whole topic is waiting
        await asyncio.wait_for(
            consume_with_renewal(
                consume, renew, pause_s=0, renewed=lambda: renewals.append(1), watch=watch.wait_for_stall
            ),
            timeout=120,
        )
        assert renewals == [1], "the paused member was not replaced exactly once"
        assert sorted(taken) == sorted(f"record-{n}".encode() for n in range(RECORDS))
        assert (await offsets.read()).lag == 0
    finally:
        for member in members:
            await member.stop()
        await watch.close()
