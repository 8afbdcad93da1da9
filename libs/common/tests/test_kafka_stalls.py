"""A commit or a stop that never returns (aiokafka's coordinator lookup hung after a broker restart,
seen in test_faults.py) ends in KafkaError / gives up, so consume_with_renewal replaces the consumer
instead of the worker waiting forever."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaError

from tollgate.common.kafka import commit_within, consume_with_renewal, renewed_consumer


class HungConsumer:
    def __init__(self) -> None:
        self.commits: list[dict[Any, int]] = []
        self.stop_calls = 0

    async def commit(self, offsets: dict[Any, int]) -> None:
        await asyncio.sleep(3600)

    async def stop(self) -> None:
        self.stop_calls += 1
        await asyncio.sleep(3600)


class WorkingConsumer(HungConsumer):
    async def commit(self, offsets: dict[Any, int]) -> None:
        self.commits.append(dict(offsets))


async def test_a_commit_that_never_returns_becomes_a_kafka_error() -> None:
    with pytest.raises(KafkaError, match="offset commit stalled"):
        await commit_within(HungConsumer(), {"tp": 1}, timeout_s=0.05)


async def test_a_commit_that_returns_is_made_once() -> None:
    consumer = WorkingConsumer()
    await commit_within(consumer, {"tp": 7}, timeout_s=5)
    assert consumer.commits == [{"tp": 7}]


async def test_a_stalled_commit_renews_the_consumer_and_the_new_one_commits() -> None:
    hung, fresh = HungConsumer(), WorkingConsumer()
    current: list[Any] = [hung]
    renewals: list[int] = []

    async def consume() -> None:
        await commit_within(current[0], {"tp": 3}, timeout_s=0.05)

    async def renew() -> None:
        current[0] = await renewed_consumer(current[0], lambda: fresh, stop_timeout_s=0.05)

    await asyncio.wait_for(
        consume_with_renewal(consume, renew, pause_s=0, renewed=lambda: renewals.append(1)), timeout=10
    )
    assert renewals == [1] and hung.stop_calls == 1 and current[0] is fresh
    assert fresh.commits == [{"tp": 3}]
