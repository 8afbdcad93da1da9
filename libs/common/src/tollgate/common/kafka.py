"""Kafka plumbing: topic names, an idempotent producer, consumers that commit only when told to."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.partitioner import murmur2
from pydantic import SecretStr

from tollgate.common.settings import ServiceSettings
from tollgate.common.tls import TransportConfigError, client_ssl_context, refuse_unused

T = TypeVar("T")
log = logging.getLogger(__name__)

TOPIC_USAGE = "usage.v1"
TOPIC_AUTH_KEYS = "auth.keys.v1"
TOPIC_BILLING_ALERTS = "billing.alerts.v1"
TOPIC_TRAINING = "training.v1"
TOPIC_CHAT_RECORDS = "chat.records.v1"  # keyed by org; docs/chat-records.md

# partitions per topic; usage is keyed by org so an org's events stay in order on one partition
TOPICS: dict[str, int] = {
    TOPIC_USAGE: 6,
    TOPIC_AUTH_KEYS: 1,
    TOPIC_BILLING_ALERTS: 3,
    TOPIC_TRAINING: 3,
    TOPIC_CHAT_RECORDS: 3,
}

EVENT_TYPE_HEADER = "event-type"


@dataclass(frozen=True)
class KafkaConnection:
    """Where the brokers are and how to reach them (TLS, SASL): what every producer, consumer and
    admin client of a process is given. Build it once at start with `kafka_connection(settings)`."""

    bootstrap: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str = ""
    sasl_password: SecretStr = field(default=SecretStr(""), repr=False)
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)

    def client_options(self) -> dict[str, Any]:
        """aiokafka's keyword arguments for these brokers (the password unwrapped only here)."""
        options: dict[str, Any] = {"bootstrap_servers": self.bootstrap}
        if self.security_protocol == "PLAINTEXT":
            return options  # aiokafka's defaults: nothing else to pass on the plaintext path
        options["security_protocol"] = self.security_protocol
        if self.ssl_context is not None:
            options["ssl_context"] = self.ssl_context
        if self.sasl_mechanism is not None:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password.get_secret_value()
        return options


# A bare "host:port,..." string means plaintext brokers (the local stack's own tooling, tests).
Brokers = KafkaConnection | str


def _connection(brokers: Brokers) -> KafkaConnection:
    return brokers if isinstance(brokers, KafkaConnection) else KafkaConnection(brokers)


def kafka_connection(settings: ServiceSettings) -> KafkaConnection:
    """The brokers of `settings` (ServiceSettings), checked: SASL needs a user and password, TLS
    files need a TLS protocol. Raises TransportConfigError naming the variable."""
    protocol = settings.kafka_security_protocol
    tls = protocol in ("SSL", "SASL_SSL")
    sasl = protocol in ("SASL_PLAINTEXT", "SASL_SSL")
    if not tls:
        refuse_unused(
            settings,
            f"{settings.env_name('kafka_security_protocol')}={protocol} does not use TLS",
            "kafka_tls_ca_file",
            "kafka_tls_cert_file",
            "kafka_tls_key_file",
        )
    if sasl and not (settings.kafka_sasl_username and settings.kafka_sasl_password.get_secret_value()):
        raise TransportConfigError(
            f"{settings.env_name('kafka_security_protocol')}={protocol} needs "
            f"{settings.env_name('kafka_sasl_username')} and {settings.env_name('kafka_sasl_password')}"
        )
    if not sasl and settings.kafka_sasl_username:
        raise TransportConfigError(
            f"{settings.env_name('kafka_sasl_username')} set, but "
            f"{settings.env_name('kafka_security_protocol')}={protocol} does not use SASL"
        )
    context = (
        client_ssl_context(
            settings,
            ca="kafka_tls_ca_file",
            cert="kafka_tls_cert_file",
            key="kafka_tls_key_file",
            check_hostname=settings.kafka_tls_check_hostname,
        )
        if tls
        else None
    )
    return KafkaConnection(
        bootstrap=settings.kafka_bootstrap,
        security_protocol=protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism if sasl else None,
        sasl_username=settings.kafka_sasl_username,
        sasl_password=settings.kafka_sasl_password,
        ssl_context=context,
    )


class KeyHashPartitioner:
    """aiokafka's DefaultPartitioner with each key's murmur2 hash remembered: the same partition for
    every key (the Java client's choice), without the pure-Python hash on every send (~8 µs a
    record, about as much as the rest of `send`; our keys are a few thousand organisation ids)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._hashes: dict[bytes, int] = {}
        self._max_keys = max_keys

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return random.choice(available or all_partitions)
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= self._max_keys:
                self._hashes.clear()
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[hashed % len(all_partitions)]


def make_producer(brokers: Brokers, client_id: str, **overrides: Any) -> AIOKafkaProducer:
    """An idempotent producer: acks=all, retries without duplicates inside one producer session."""
    options: dict[str, Any] = {
        **_connection(brokers).client_options(),
        "client_id": client_id,
        "partitioner": KeyHashPartitioner(),
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 2,
        "request_timeout_ms": 5000,
        "retry_backoff_ms": 100,
        "metadata_max_age_ms": 30000,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def make_consumer(brokers: Brokers, group_id: str, *topics: str, **overrides: Any) -> AIOKafkaConsumer:
    """A consumer that never auto-commits: offsets are committed after the DB transaction commits."""
    options: dict[str, Any] = {
        **_connection(brokers).client_options(),
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


def make_offsets_reader(brokers: Brokers, client_id: str) -> AIOKafkaConsumer:
    """A consumer of no group, subscribed to nothing: reads partitions' beginning and end offsets."""
    return AIOKafkaConsumer(
        **_connection(brokers).client_options(), client_id=client_id, group_id=None, enable_auto_commit=False
    )


async def start_when_available(
    consumer: Any, name: str, *, first_backoff_s: float, max_backoff_s: float
) -> None:
    """Starts the consumer, waiting for Kafka (doubling the pause up to max_backoff_s) instead of
    failing: a service must come up, and stay up, while the broker is away."""
    backoff = first_backoff_s
    while True:
        try:
            await consumer.start()
            return
        except KafkaError as exc:
            log.warning(
                "kafka unavailable, %s retrying", name, extra={"error": repr(exc), "backoff_s": backoff}
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff_s)


# A commit waits for the group coordinator, through a broker restart too (seconds). Seen in
# test_faults.py: after the broker was SIGKILLed mid-commit, aiokafka 0.14's coordinator lookup
# waited forever on a metadata update that never ran, so the commit never returned, nothing was
# polled again and a billing worker settled nothing for minutes without logging a line.
COMMIT_STALL_S = 60.0
# stopping a consumer whose coordination hung can hang the same way (it commits and leaves)
STOP_STALL_S = 15.0


async def commit_within(consumer: Any, offsets: dict[Any, int], *, timeout_s: float = COMMIT_STALL_S) -> None:
    """consumer.commit(offsets), or KafkaError once it has waited timeout_s: consume_with_renewal
    then replaces the consumer, which resumes from the last committed offsets (what was processed
    since comes back as duplicates the caller dedupes)."""
    try:
        async with asyncio.timeout(timeout_s):
            await consumer.commit(offsets)
    except TimeoutError as exc:
        raise KafkaError(f"offset commit stalled for {timeout_s:g} s") from exc


async def renewed_consumer(old: Any, factory: Callable[[], T], *, stop_timeout_s: float = STOP_STALL_S) -> T:
    """`renew` for consume_with_renewal: the ended consumer stopped (its errors ignored, and its stop
    given up after stop_timeout_s: aiokafka has already given it up) and a new one of the same group
    in its place."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(stop_timeout_s):
            await old.stop()
    return factory()


async def consume_with_renewal(
    consume: Callable[[], Awaitable[None]],
    renew: Callable[[], Awaitable[None]] | None,
    *,
    pause_s: float,
    renewed: Callable[[], None],
    watch: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Runs `consume` (start a consumer and poll it for good) until it fails. aiokafka ends a
    consumer whose group coordination failed unexpectedly (seen: the broker SIGKILLed mid-rejoin,
    "the handler is closed"), raising KafkaError from every poll, and never recovers it: `renew`
    then replaces the consumer (stopping the old one) after `pause_s`, counted by `renewed`, and
    consuming resumes from the committed offsets, so what was processed and not committed comes back
    as duplicates the caller dedupes. Without `renew` the error ends the call (and the process).
    `watch` (stall_watch.StallWatch.wait_for_stall) runs beside each consumer: a KafkaError from it
    (a consumer that stopped taking records without failing) ends `consume` and renews it the same way."""
    while True:
        try:
            await _consume_watched(consume, watch)
            return
        except KafkaError:
            if renew is None:
                raise
            renewed()
            log.warning("kafka consumer failed; starting a new one", exc_info=True)
            await asyncio.sleep(pause_s)
            await renew()


async def _consume_watched(
    consume: Callable[[], Awaitable[None]], watch: Callable[[], Awaitable[None]] | None
) -> None:
    if watch is None:
        await consume()
        return
    consuming = asyncio.ensure_future(consume())
    watching = asyncio.ensure_future(watch())
    try:
        done, _ = await asyncio.wait({consuming, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (consuming, watching):
            task.cancel()
        await asyncio.gather(consuming, watching, return_exceptions=True)
    (consuming if consuming in done else watching).result()


def make_admin(brokers: Brokers, client_id: str, **overrides: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**_connection(brokers).client_options(), client_id=client_id, **overrides)


async def ensure_topics(brokers: Brokers, topics: dict[str, int] | None = None) -> None:
    """Create the platform's topics if missing (replication factor 1 suits the local single node)."""
    admin = make_admin(brokers, "tollgate-topics")
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
