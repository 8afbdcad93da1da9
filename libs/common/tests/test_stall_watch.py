"""StallWatch: a member that takes nothing while its group has records waiting is renewed; one that
works through a batch, a group whose commits move, an empty group and an unreadable broker are not."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import TopicPartition

from tollgate.common.kafka import consume_with_renewal
from tollgate.common.stall_watch import ConsumerStalled, GroupPosition, StallWatch

TP = TopicPartition("usage.v1", 0)
STEP_S = 10.0  # the fake clock moves this much on each read


class Broker:
    """The group's position as the fake brokers tell it; every read moves the fake clock on."""

    def __init__(self, position: Callable[[int], GroupPosition | Exception]) -> None:
        self.now = 0.0
        self.reads = 0
        self._position = position
        self._waiters: list[tuple[int, asyncio.Event]] = []

    def after(self, reads: int) -> asyncio.Event:
        """Set once the brokers have been read `reads` times."""
        event = asyncio.Event()
        self._waiters.append((reads, event))
        return event

    def clock(self) -> float:
        return self.now

    async def read(self) -> GroupPosition:
        self.reads += 1
        self.now += STEP_S
        for reads, event in self._waiters:
            if self.reads >= reads:
                event.set()
        answer = self._position(self.reads)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def close(self) -> None:
        pass


def stuck(_: int) -> GroupPosition:
    return GroupPosition(committed={TP: 100}, ends={TP: 250})


def watch_of(broker: Broker, stall_s: float = 60.0) -> StallWatch:
    return StallWatch(broker, stall_s=stall_s, interval_s=0, clock=broker.clock)


async def reads_without_stall(watch: StallWatch, broker: Broker, reads: int) -> None:
    task = asyncio.ensure_future(watch.wait_for_stall())
    enough = asyncio.ensure_future(broker.after(reads).wait())
    await asyncio.wait({task, enough}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # raises what stopped it
    for waiting in (task, enough):
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
    assert broker.reads >= reads


async def test_records_waiting_that_nobody_takes_are_a_stall_after_stall_s() -> None:
    broker = Broker(stuck)
    with pytest.raises(ConsumerStalled, match="150 records waiting"):
        await asyncio.wait_for(watch_of(broker, stall_s=60).wait_for_stall(), 10)
    # the first read is the baseline; 60 s of fake time later (six more reads) it is a stall
    assert broker.reads == 7


async def test_a_batch_in_hand_is_work_not_a_stall_and_the_quiet_time_starts_after_it() -> None:
    broker = Broker(stuck)
    watch = watch_of(broker)
    with watch.busy():
        await reads_without_stall(watch, broker, 30)
    released_at = broker.reads
    with pytest.raises(ConsumerStalled):
        await asyncio.wait_for(watch.wait_for_stall(), 10)
    assert broker.reads - released_at >= 6


async def test_commits_that_move_are_progress_however_large_the_lag() -> None:
    broker = Broker(lambda n: GroupPosition(committed={TP: n * 5}, ends={TP: 10_000}))
    await reads_without_stall(watch_of(broker), broker, 40)


async def test_a_group_with_nothing_waiting_is_idle_not_stalled() -> None:
    broker = Broker(lambda _: GroupPosition(committed={TP: 250}, ends={TP: 250}))
    await reads_without_stall(watch_of(broker), broker, 40)


async def test_brokers_it_cannot_read_are_not_this_members_stall() -> None:
    broker = Broker(lambda _: ConnectionError("kafka away"))
    await reads_without_stall(watch_of(broker), broker, 40)


async def test_never_committed_partitions_count_from_their_start() -> None:
    position = GroupPosition(committed={TP: 40}, ends={TP: 40, TopicPartition("usage.v1", 1): 7})
    assert position.lag == 7


async def test_a_stall_renews_the_consumer_and_the_new_one_goes_on() -> None:
    broker = Broker(stuck)
    watch = watch_of(broker)
    consumers = ["stalled"]
    consumed: list[str] = []
    renewals: list[int] = []
    cancelled: list[str] = []

    async def consume() -> None:
        name = consumers[-1]
        if name == "stalled":
            try:
                await asyncio.sleep(3600)  # getmany returning nothing, for good
            except asyncio.CancelledError:
                cancelled.append(name)
                raise
        consumed.append(name)

    async def renew() -> None:
        consumers.append("fresh")

    await asyncio.wait_for(
        consume_with_renewal(
            consume, renew, pause_s=0, renewed=lambda: renewals.append(1), watch=watch.wait_for_stall
        ),
        10,
    )
    assert renewals == [1] and cancelled == ["stalled"] and consumed == ["fresh"]


async def test_without_renew_a_stall_ends_the_consumer_loudly() -> None:
    broker = Broker(stuck)

    async def consume() -> Any:
        await asyncio.sleep(3600)

    with pytest.raises(ConsumerStalled):
        await asyncio.wait_for(
            consume_with_renewal(
                consume, None, pause_s=0, renewed=lambda: None, watch=watch_of(broker).wait_for_stall
            ),
            10,
        )
