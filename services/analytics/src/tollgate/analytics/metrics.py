"""Analytics' own Prometheus metrics (names are part of deploy/grafana/README.md's contract)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class AnalyticsMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events_stored = Counter(
            "analytics_usage_events_stored_total", "Usage events stored as new facts", registry=registry
        )
        self.events_duplicate = Counter(
            "analytics_usage_events_duplicate_total",
            "Usage events already stored (redelivered or spooled twice), ignored",
            registry=registry,
        )
        self.events_invalid = Counter(
            "analytics_usage_events_invalid_total",
            "Usage records that could not be decoded or lack an event id, skipped",
            registry=registry,
        )
        self.store_failures = Counter(
            "analytics_usage_store_failures_total",
            "Batches whose database transaction failed (retried)",
            registry=registry,
        )
        self.consumer_renewals = Counter(
            "analytics_usage_consumer_renewals_total",
            "Usage consumers replaced after Kafka ended their group coordination",
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "analytics_usage_consumer_lag",
            "usage.v1 records not yet stored: end offset minus the group's committed offset, by partition",
            ["partition"],
            registry=registry,
        )
        self.events_out_of_window = Counter(
            "analytics_usage_events_out_of_window_total",
            "Usage events older than the facts' retention or days ahead of the clock, skipped",
            registry=registry,
        )
        self.partition_maintenance = Counter(
            "analytics_partition_maintenance_total",
            "Runs of the usage tables' partition maintenance (pg_partman), by outcome",
            ["outcome"],
            registry=registry,
        )
        self.partition_maintenance_last_success = Gauge(
            "analytics_partition_maintenance_last_success_timestamp_seconds",
            "When the usage tables' partition maintenance last succeeded (Unix time)",
            registry=registry,
        )
        self.fact_partitions = Gauge(
            "analytics_usage_fact_partitions",
            "Day partitions of usage_events (retention plus the days made ahead)",
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "analytics_usage_batch_duration_seconds",
            "Time to store one consumed batch, commit included",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry,
        )
