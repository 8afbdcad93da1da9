"""Prometheus metrics of chat records (consumer and retention)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class ChatRecordMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.stored = Counter(
            "analytics_chat_records_stored_total", "Chat records stored as new entries", registry=registry
        )
        self.duplicate = Counter(
            "analytics_chat_records_duplicate_total",
            "Chat records already stored, ignored",
            registry=registry,
        )
        self.skipped = Counter(
            "analytics_chat_records_skipped_total",
            "Chat records not stored: undecodable, or for an organisation that records nothing",
            registry=registry,
        )
        self.store_failures = Counter(
            "analytics_chat_records_store_failures_total",
            "Chat record batches whose transaction failed (retried)",
            registry=registry,
        )
        self.consumer_renewals = Counter(
            "analytics_chat_records_consumer_renewals_total",
            "Chat record consumers replaced after Kafka ended their group coordination",
            registry=registry,
        )
        self.purged_entries = Counter(
            "analytics_chat_records_purged_total",
            "Chat record entries deleted by retention",
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "analytics_chat_records_batch_duration_seconds",
            "Time to store one consumed batch of chat records, commit included",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry,
        )
