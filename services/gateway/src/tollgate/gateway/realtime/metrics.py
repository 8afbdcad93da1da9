"""/ws metrics, on the gateway's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class RealtimeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.connections = Gauge(
            "gateway_ws_connections", "Open /ws connections (authenticated)", registry=registry
        )
        self.delivered = Counter(
            "gateway_ws_events_delivered_total", "Events sent to /ws clients", ["channel"], registry=registry
        )
        self.closed = Counter(
            "gateway_ws_closed_total",
            "/ws connections the server closed, by reason (slow_client, auth_timeout, unauthenticated, ...)",
            ["reason"],
            registry=registry,
        )
        self.records = Counter(
            "gateway_realtime_records_total", "Kafka records the realtime consumer read", registry=registry
        )
        self.appended = Counter(
            "gateway_realtime_events_appended_total",
            "Realtime events appended to Redis streams (duplicates not counted)",
            registry=registry,
        )
        self.renewals = Counter(
            "gateway_realtime_consumer_renewals_total",
            "Realtime Kafka consumers replaced after their group coordination failed",
            registry=registry,
        )
