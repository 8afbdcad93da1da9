"""Prometheus metrics of the training API and worker processes."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.jobs_created = Counter(
            "training_jobs_created_total",
            "Fine-tuning jobs accepted (hold placed)",
            ["surface"],
            registry=registry,
        )


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.leased = Counter("training_jobs_leased_total", "Job leases taken", ["kind"], registry=registry)
        self.finished = Counter("training_jobs_finished_total", "Jobs ended", ["status"], registry=registry)
        self.running = Gauge("training_jobs_running", "Job processes this worker runs", registry=registry)
        self.lease_lost = Counter(
            "training_leases_expired_total",
            "Running jobs whose worker stopped heartbeating",
            registry=registry,
        )
