"""A group member that takes nothing while its group has records waiting: found, and renewed.

Seen once in test_faults.py's clean-clone run: a billing worker restarted while its dead predecessor's
session was still open settled a few batches and then nothing more, for minutes, through a Kafka
restart too, without an error: aiokafka's consumer had stopped fetching (or rejoining) without ending
itself, so consume_with_renewal, which renews on KafkaError, never did. Every answered request after
that waited on the hold sweeper's republish, which needs the same worker.

The watch looks from outside the consumer, with clients of its own (an admin client for the group's
committed offsets, a group-less consumer for the partitions' end offsets), so whatever state the
consumer's own client is in does not blind it. The member is stalled when, for `stall_s`:
- the group has records it has not committed (lag > 0) and its committed offsets have not moved, and
- this member's poll loop has had no batch in hand (a batch being retried through a database outage
  is work, not a stall: renewing would only fetch the same records again).
Then `wait_for_stall` raises ConsumerStalled (a KafkaError), which consume_with_renewal answers the way
it answers aiokafka's own failures: a new consumer of the same group, from the committed offsets.
A broker the watch cannot read (Kafka away) is not a stall: the consumer's own retries cover that.
With more members than partitions an idle member also renews on a stalled group; the rebalance that
causes is what un-sticks a member stuck in its join.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from tollgate.common.kafka import Brokers, make_admin, make_offsets_reader

log = logging.getLogger(__name__)


class ConsumerStalled(KafkaError):  # type: ignore[misc]  # aiokafka ships no types
    """The group had records waiting that this member did not take for stall_s."""


@dataclass(frozen=True)
class GroupPosition:
    """Per partition of the group's topics: the group's committed offset and the partition's end."""

    committed: Mapping[TopicPartition, int]
    ends: Mapping[TopicPartition, int]

    @property
    def lag(self) -> int:
        return sum(max(end - self.committed.get(tp, 0), 0) for tp, end in self.ends.items())


class GroupOffsets(Protocol):
    async def read(self) -> GroupPosition: ...
    async def close(self) -> None: ...


class BrokerGroupOffsets:
    """The group's position read from the brokers with clients of its own, started on first use."""

    def __init__(self, brokers: Brokers, group_id: str, topics: tuple[str, ...]) -> None:
        self._brokers = brokers
        self._group_id = group_id
        self._topics = list(topics)
        self._admin: Any = None
        self._ends: AIOKafkaConsumer | None = None

    async def read(self) -> GroupPosition:
        if self._admin is None or self._ends is None:
            await self._start()
        assert self._admin is not None and self._ends is not None
        topics = await self._admin.describe_topics(self._topics)
        partitions = [
            TopicPartition(topic["topic"], part["partition"])
            for topic in topics
            for part in topic["partitions"]
        ]
        ends = await self._ends.end_offsets(partitions)
        fetched = await self._admin.list_consumer_group_offsets(self._group_id, partitions=partitions)
        committed = {tp: meta.offset for tp, meta in fetched.items() if meta.offset >= 0}
        if len(committed) < len(partitions):  # never committed: the group starts from the beginning
            starts = await self._ends.beginning_offsets(partitions)
            committed = {tp: committed.get(tp, starts[tp]) for tp in partitions}
        return GroupPosition(committed=committed, ends=ends)

    async def _start(self) -> None:
        admin = make_admin(self._brokers, f"{self._group_id}-watch")
        ends = make_offsets_reader(self._brokers, f"{self._group_id}-watch")
        try:
            await admin.start()
            await ends.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await admin.close()
            with contextlib.suppress(Exception):
                await ends.stop()
            raise
        self._admin, self._ends = admin, ends

    async def close(self) -> None:
        admin, ends, self._admin, self._ends = self._admin, self._ends, None, None
        with contextlib.suppress(Exception):
            if admin is not None:
                await admin.close()
        with contextlib.suppress(Exception):
            if ends is not None:
                await ends.stop()


class StallWatch:
    """`offsets` None: the watch is off (`waiter` is None, `busy` and `close` do nothing that matters),
    so a consumer holds a watch either way."""

    def __init__(
        self,
        offsets: GroupOffsets | None,
        *,
        stall_s: float,
        interval_s: float = 5.0,
        read_timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._offsets = offsets
        self._stall_s = stall_s
        self._interval_s = interval_s
        self._read_timeout_s = read_timeout_s
        self._clock = clock
        self._busy = 0
        self._quiet_since = clock()

    @classmethod
    def of_group(cls, brokers: Brokers, group_id: str, *topics: str, stall_s: float) -> StallWatch:
        """The watch of a service's consumer group (off when stall_s is 0)."""
        return cls(BrokerGroupOffsets(brokers, group_id, topics) if stall_s > 0 else None, stall_s=stall_s)

    @classmethod
    def off(cls) -> StallWatch:
        return cls(None, stall_s=0)

    @property
    def waiter(self) -> Callable[[], Awaitable[None]] | None:
        """consume_with_renewal's `watch`: None when the watch is off."""
        return self.wait_for_stall if self._offsets is not None else None

    async def close(self) -> None:
        if self._offsets is not None:
            await self._offsets.close()

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Around a batch in hand: no stall while it lasts, and the quiet time starts again after."""
        self._busy += 1
        try:
            yield
        finally:
            self._busy -= 1
            self._quiet_since = self._clock()

    async def wait_for_stall(self) -> None:
        """Returns never; raises ConsumerStalled once the member has stalled (see the module doc)."""
        assert self._offsets is not None, "an off watch has no waiter"
        now = self._clock()
        self._quiet_since = now  # a new consumer: its join and first fetch get the whole allowance
        moved_at = now
        last: Mapping[TopicPartition, int] | None = None
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for loses a cancel that meets a finished
                # read, and the watch would outlive the consumer it was cancelled with
                async with asyncio.timeout(self._read_timeout_s):
                    position = await self._offsets.read()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Kafka away or slow: not this member's stall
                log.debug("group position not read", extra={"error": repr(exc)})
                continue
            now = self._clock()
            if position.lag == 0 or position.committed != last:
                moved_at, last = now, position.committed
            if self._busy or position.lag == 0:
                continue
            waited = now - max(moved_at, self._quiet_since)
            if waited >= self._stall_s:
                log.error(
                    "kafka consumer stalled: the group has records waiting and took none",
                    extra={"lag": position.lag, "stalled_s": round(waited, 1)},
                )
                raise ConsumerStalled(f"{position.lag} records waiting, none taken for {waited:.0f} s")
