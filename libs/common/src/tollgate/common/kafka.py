"""Kafka plumbing: topic names, an idempotent producer, consumers that commit only when told to."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

log = logging.getLogger(__name__)

TOPIC_USAGE = "usage.v1"
TOPIC_AUTH_KEYS = "auth.keys.v1"
TOPIC_BILLING_ALERTS = "billing.alerts.v1"
TOPIC_TRAINING = "training.v1"

# partitions per topic; usage is keyed by org so an org's events stay in order on one partition
TOPICS: dict[str, int] = {TOPIC_USAGE: 6, TOPIC_AUTH_KEYS: 1, TOPIC_BILLING_ALERTS: 3, TOPIC_TRAINING: 3}

EVENT_TYPE_HEADER = "event-type"


def make_producer(bootstrap: str, client_id: str, **overrides: Any) -> AIOKafkaProducer:
    """An idempotent producer: acks=all, retries without duplicates inside one producer session."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 2,
        "request_timeout_ms": 5000,
        "retry_backoff_ms": 100,
        "metadata_max_age_ms": 30000,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def make_consumer(bootstrap: str, group_id: str, *topics: str, **overrides: Any) -> AIOKafkaConsumer:
    """A consumer that never auto-commits: offsets are committed after the DB transaction commits."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "group_id": group_id,
        "client_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
        "max_poll_records": 500,
        # Let the broker gather a batch (up to 100 ms): one DB transaction per batch instead of per
        # event is what keeps consumer CPU per event low at a trickle of traffic too.
        "fetch_min_bytes": 64 * 1024,
        "fetch_max_wait_ms": 100,
        "session_timeout_ms": 10000,
        "heartbeat_interval_ms": 3000,
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


async def consume_with_renewal(
    consume: Callable[[], Awaitable[None]],
    renew: Callable[[], Awaitable[None]] | None,
    *,
    pause_s: float,
    renewed: Callable[[], None],
) -> None:
    """Runs `consume` (start a consumer and poll it for good) until it fails. aiokafka ends a
    consumer whose group coordination failed unexpectedly (seen: the broker SIGKILLed mid-rejoin,
    "the handler is closed"), raising KafkaError from every poll, and never recovers it: `renew`
    then replaces the consumer (stopping the old one) after `pause_s`, counted by `renewed`, and
    consuming resumes from the committed offsets, so what was processed and not committed comes back
    as duplicates the caller dedupes. Without `renew` the error ends the call (and the process)."""
    while True:
        try:
            await consume()
            return
        except KafkaError:
            if renew is None:
                raise
            renewed()
            log.warning("kafka consumer failed; starting a new one", exc_info=True)
            await asyncio.sleep(pause_s)
            await renew()


async def ensure_topics(bootstrap: str, topics: dict[str, int] | None = None) -> None:
    """Create the platform's topics if missing (replication factor 1 suits the local single node)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="tollgate-topics")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name=name, num_partitions=parts, replication_factor=1)
            for name, parts in (topics or TOPICS).items()
            if name not in existing
        ]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()
