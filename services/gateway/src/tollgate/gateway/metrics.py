"""Gateway-specific Prometheus metrics, registered on the registry served at /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.chat_requests = Counter(
            "gateway_chat_requests_total",
            "Chat completion requests by outcome",
            ["status"],
            registry=registry,
        )
        self.upstream_latency = Histogram(
            "gateway_upstream_latency_seconds",
            "Time to the upstream's response headers",
            ["provider"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )
        self.principal_cache = Counter(
            "gateway_principal_cache_total", "Principal cache lookups", ["result"], registry=registry
        )
        self.holds_refused = Counter(
            "gateway_holds_refused_total",
            "Reserve calls billing refused, by the reason billing gave",
            ["reason"],
            registry=registry,
        )
        self.hold_stock = Counter(
            "gateway_hold_stock_total",
            "Stocked billing holds (completions/hold_stock.py): placed, hit, miss, and why one was released",
            ["outcome"],
            registry=registry,
        )
        self.hold_marks = Counter(
            "gateway_hold_marks_total",
            "Marks of answered requests' holds sent to billing (usage/marks.py), dropped while billing "
            "was unreachable (the usage event still settles those), or late: writes that let their "
            "answers go before completing (billing stalled)",
            ["outcome"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "gateway_rate_limited_total",
            "Requests refused with 429 by a rate limit (limits/gate.py), by the refusing limit's scope "
            "(key, org, model, ip) and measure (requests, tokens)",
            ["scope", "measure"],
            registry=registry,
        )
        self.reserve_retries = Counter(
            "gateway_reserve_retries_total",
            "Refused Reserves asked once more because a mark of the same org had just left",
            registry=registry,
        )
        self.operations = Counter(
            "gateway_operations_total",
            "Priced requests other than /v1/chat/completions, by route family, operation and outcome",
            ["family", "operation", "status"],
            registry=registry,
        )
        self.charged_micros = Counter(
            "gateway_charged_micros_total",
            "Micro-credits the gateway priced into usage events, by operation and batch flag",
            ["operation", "batch"],
            registry=registry,
        )
        self.usage_sent = Counter(
            "gateway_usage_events_sent_total", "Usage events acknowledged by Kafka", registry=registry
        )
        self.usage_spooled = Counter(
            "gateway_usage_events_spooled_total", "Usage events written to the Redis spool", registry=registry
        )
        self.usage_drained = Counter(
            "gateway_usage_events_drained_total",
            "Spooled usage events republished to Kafka and removed from the spool",
            registry=registry,
        )
        self.usage_lost = Counter(
            "gateway_usage_events_lost_total",
            "Usage events neither Kafka nor the spool accepted (logged in full)",
            registry=registry,
        )
        self.key_invalidations = Counter(
            "gateway_key_invalidations_total", "auth.keys.v1 events applied to the cache", registry=registry
        )
