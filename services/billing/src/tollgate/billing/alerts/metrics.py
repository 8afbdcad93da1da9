"""Prometheus metrics of alert delivery, registered on the billing worker's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class AlertMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "billing_alert_deliveries_total",
            "Alert delivery attempts by channel and outcome (delivered, retry, failed)",
            ["channel", "outcome"],
            registry=registry,
        )
        self.send_seconds = Histogram(
            "billing_alert_delivery_duration_seconds",
            "Time to send one alert delivery attempt",
            ["channel"],
            buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.dispatch_errors = Counter(
            "billing_alert_dispatch_errors_total",
            "Dispatcher rounds that failed (database unreachable and the like) and were retried",
            registry=registry,
        )
        self.leases_lost = Counter(
            "billing_alert_leases_lost_total",
            "Attempts whose result came after another dispatcher took the delivery over",
            registry=registry,
        )
