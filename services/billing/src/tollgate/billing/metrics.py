"""Billing's Prometheus metrics, registered on the registry the service exposes at /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class BillingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.holds_granted = Counter(
            "billing_holds_granted_total", "Reserve calls granted", registry=registry
        )
        self.holds_refused = Counter(
            "billing_holds_refused_total", "Reserve calls refused for insufficient credits", registry=registry
        )
        self.holds_released = Counter(
            "billing_holds_released_total", "Holds released by Release or settlement", registry=registry
        )
        self.holds_expired = Counter(
            "billing_holds_expired_total", "Holds released by the sweeper after their TTL", registry=registry
        )
        # marks: holds of answered requests at their actual cost (docs/billing.md)
        self.holds_marked = Counter(
            "billing_holds_marked_total",
            "Holds the gateway marked with their request's actual cost as it answered",
            registry=registry,
        )
        self.marks_late = Counter(
            "billing_hold_marks_late_total",
            "Marks whose hold was already settled, released or expired (nothing to do)",
            registry=registry,
        )
        self.marks_dropped = Counter(
            "billing_hold_marks_dropped_total",
            "Marks dropped while Redis was away and too many waited (their usage events settle them)",
            registry=registry,
        )
        self.marks_republished = Counter(
            "billing_hold_marks_republished_total",
            "Usage events published from the marks of expired holds (the gateway's own copy never "
            "settled them: lost with a killed gateway, or late)",
            registry=registry,
        )
        # the marks port (holds/mark_listener.py)
        self.marks_received = Counter(
            "billing_hold_marks_received_total",
            "Marks received on the marks port, by outcome (accepted, malformed: skipped)",
            ["outcome"],
            registry=registry,
        )
        self.mark_connections = Gauge(
            "billing_hold_mark_connections",
            "Gateway connections open on the marks port (0 while every gateway runs: none can mark)",
            registry=registry,
        )
        self.mark_connections_refused = Counter(
            "billing_hold_mark_connections_refused_total",
            "Marks connections closed for a frame that does not parse or is over the size limit",
            registry=registry,
        )
        self.reserve_retried_after_marks = Counter(
            "billing_reserve_retried_after_marks_total",
            "Refused Reserves asked again once the org's marks in flight were applied",
            registry=registry,
        )
        # budgets and quotas (budgets helper)
        self.reserve_refusals = Counter(
            "billing_reserve_refusals_total",
            "Reserve calls refused, by reason (insufficient_credits, budget_exceeded, quota_exceeded)",
            ["reason"],
            registry=registry,
        )
        self.holds_capped = Counter(
            "billing_holds_capped_total",
            "Holds placed below max_cost because a budget or quota had less left",
            registry=registry,
        )
        self.limits_loads = Counter(
            "billing_limits_cache_loads_total",
            "Org limits loaded from PostgreSQL into Redis",
            registry=registry,
        )
        self.wallet_loads = Counter(
            "billing_wallet_cache_loads_total", "Wallets loaded from PostgreSQL into Redis", registry=registry
        )
        self.reserve_seconds = Histogram(
            "billing_reserve_duration_seconds",
            "Reserve latency inside billing",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1),
            registry=registry,
        )
        self.usage_settled = Counter(
            "billing_usage_settled_total", "Usage events settled (first delivery)", registry=registry
        )
        self.usage_duplicates = Counter(
            "billing_usage_duplicates_total", "Usage events already settled (redelivered)", registry=registry
        )
        self.usage_undecodable = Counter(
            "billing_usage_undecodable_total",
            "Usage records skipped as undecodable or invalid",
            registry=registry,
        )
        self.usage_charged_micros = Counter(
            "billing_usage_charged_micros_total", "Micro-credits charged by settlements", registry=registry
        )
        self.batch_failures = Counter(
            "billing_usage_batch_failures_total",
            "Usage batches that failed and were retried",
            registry=registry,
        )
        self.consumer_renewals = Counter(
            "billing_usage_consumer_renewals_total",
            "Usage consumers replaced after Kafka ended their group coordination",
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "billing_usage_consumer_lag",
            "usage.v1 records not yet settled: end offset minus the group's committed offset, by partition",
            ["partition"],
            registry=registry,
        )
        # usage_settlements' day partitions (pg_partman, settlements/partitions.py)
        self.settlement_maintenance = Counter(
            "billing_settlement_partition_maintenance_total",
            "Runs of usage_settlements' partition maintenance (pg_partman), by outcome",
            ["outcome"],
            registry=registry,
        )
        self.settlement_maintenance_last_success = Gauge(
            "billing_settlement_partition_maintenance_last_success_timestamp_seconds",
            "When usage_settlements' partition maintenance last succeeded",
            registry=registry,
        )
        self.settlement_partitions = Gauge(
            "billing_settlement_partitions",
            "Day partitions of usage_settlements (the default one not counted)",
            registry=registry,
        )
        self.recharges = Counter("billing_recharges_total", "Recharges applied", registry=registry)
        # payments (package purchases, provider webhooks, refunds, adjustments, reconciliation)
        self.payment_webhooks = Counter(
            "billing_payment_webhooks_total",
            "Provider webhooks by outcome (credited, failed, duplicate, ignored, rejected)",
            ["provider", "outcome"],
            registry=registry,
        )
        self.purchases = Counter(
            "billing_credit_purchases_total", "Package purchases opened (pending payments)", registry=registry
        )
        self.purchased_micros = Counter(
            "billing_purchased_credits_micros_total",
            "Micro-credits granted by provider payments, bonus included",
            registry=registry,
        )
        self.refunds = Counter("billing_refunds_total", "Refunds recorded", registry=registry)
        self.refunded_credits_micros = Counter(
            "billing_refunded_credits_micros_total", "Micro-credits taken back by refunds", registry=registry
        )
        self.adjustments = Counter(
            "billing_adjustments_total", "Admin adjustments applied", registry=registry
        )
        self.reconcile_mismatches = Gauge(
            "billing_reconcile_mismatched_wallets",
            "Wallets whose balance disagrees with their ledger at the last reconciliation",
            registry=registry,
        )
        self.reconcile_runs = Counter(
            "billing_reconcile_runs_total", "Reconciliations completed", registry=registry
        )
        self.reconcile_failures = Counter(
            "billing_reconcile_failures_total", "Reconciliations that failed to run", registry=registry
        )
