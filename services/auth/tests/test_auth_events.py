import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from tollgate.auth.keys.events import KafkaKeyEvents, KeyChange
from tollgate.contracts.v1 import events_pb2

CHANGE = KeyChange(42, "ab" * 32, "revoked", datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC))


class FakeProducer:
    def __init__(self, *, fail_start: bool = False, hang_send: bool = False) -> None:
        self.fail_start = fail_start
        self.hang_send = hang_send
        self.sent: list[dict[str, Any]] = []
        self.started = self.stopped = False

    async def start(self) -> None:
        if self.fail_start:
            raise KafkaConnectionError("Unable to bootstrap")
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send_and_wait(self, topic: str, **kwargs: Any) -> None:
        if self.hang_send:
            await asyncio.sleep(60)
        self.sent.append({"topic": topic, **kwargs})


def _events(*producers: FakeProducer, timeout_s: float = 1.0) -> KafkaKeyEvents:
    queue = list(producers)
    return KafkaKeyEvents(lambda: queue.pop(0), timeout_s)  # type: ignore[arg-type,return-value]


async def test_publishes_api_key_changed_keyed_by_key_id_with_event_type_header() -> None:
    producer = FakeProducer()
    events = _events(producer)
    await events.publish([CHANGE])
    [record] = producer.sent
    assert record["topic"] == "auth.keys.v1"
    assert record["key"] == b"42"
    assert ("event-type", b"ApiKeyChanged") in record["headers"]
    message = events_pb2.ApiKeyChanged.FromString(record["value"])
    assert (message.key_id, message.key_hash, message.change) == (42, "ab" * 32, "revoked")
    assert message.changed_at_unix_ms == int(CHANGE.changed_at.timestamp() * 1000)
    await events.stop()
    assert producer.stopped


async def test_kafka_down_logs_a_warning_and_the_next_publish_tries_a_fresh_producer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken, healthy = FakeProducer(fail_start=True), FakeProducer()
    events = _events(broken, healthy)
    with caplog.at_level(logging.WARNING):
        await events.publish([CHANGE])  # must not raise: the change is already committed
    assert broken.stopped and not broken.sent
    assert any("not published" in r.getMessage() for r in caplog.records)
    assert all(CHANGE.key_hash not in r.getMessage() for r in caplog.records)
    await events.publish([CHANGE])
    assert len(healthy.sent) == 1


async def test_a_send_that_hangs_is_bounded_by_the_timeout(caplog: pytest.LogCaptureFixture) -> None:
    events = _events(FakeProducer(hang_send=True), timeout_s=0.05)
    with caplog.at_level(logging.WARNING):
        await asyncio.wait_for(events.publish([CHANGE]), 2)
    assert any("not published" in r.getMessage() for r in caplog.records)
