"""Composition root of the training API: settings, migrations, database, auth and billing clients,
the outbox relay and the HTTP app, run in one loop. It never trains (tollgate-training-worker does)."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry

from tollgate.common import runner
from tollgate.common.auth_client import AuthClient
from tollgate.common.db import database_health, make_sessionmaker, service_engine
from tollgate.common.grpc import channel_tls, make_channel
from tollgate.common.kafka import kafka_connection, make_producer
from tollgate.common.logging import configure_logging
from tollgate.common.metrics_endpoint import MetricsEndpoint
from tollgate.common.migrations import migrate
from tollgate.common.telemetry import configure_tracing
from tollgate.training.app import build_app
from tollgate.training.billing import BillingHolds
from tollgate.training.config import TrainingSettings
from tollgate.training.events.outbox import OutboxMetrics, OutboxRelay
from tollgate.training.files.service import FileService
from tollgate.training.files.storage import FileStorage
from tollgate.training.jobs.service import JobService
from tollgate.training.notify import OUTBOX_CHANNEL, NotifyListener
from tollgate.training.vectors.indexes import IndexCache, IndexMetrics
from tollgate.training.vectors.maintenance import IndexMaintenance
from tollgate.training.vectors.service import VectorService

log = logging.getLogger(__name__)


async def main() -> None:
    settings = TrainingSettings()
    configure_logging(settings.service_name, settings.log_level)
    tracing = configure_tracing(
        settings.service_name, console=settings.otel_exporter_console, sample_ratio=settings.otel_sample_ratio
    )
    if settings.run_migrations:
        await migrate(settings.alembic_ini, settings.database_url)
    settings.files_dir.mkdir(parents=True, exist_ok=True)

    engine = service_engine(settings, tracing)
    sessions = make_sessionmaker(engine)
    registry = CollectorRegistry()
    grpc_tls = channel_tls(settings)
    kafka = kafka_connection(settings)
    auth_channel = make_channel(settings.auth_grpc_target, grpc_tls)
    billing_channel = make_channel(settings.billing_grpc_target, grpc_tls)
    holds = BillingHolds(
        billing_channel, ttl_seconds=settings.hold_ttl_seconds, timeout_s=settings.billing_timeout_s
    )
    relay = OutboxRelay(
        sessions,
        lambda: make_producer(kafka, "tollgate-training"),
        OutboxMetrics(registry),
        interval_s=settings.outbox_interval_s,
        batch=settings.outbox_batch,
        listener=NotifyListener(engine, OUTBOX_CHANNEL),
    )
    files = FileService(
        FileStorage(settings.files_dir),
        max_bytes=settings.max_file_bytes,
        max_lines=settings.max_file_lines,
        max_seq_len=settings.max_seq_len,
    )
    indexes = IndexCache(
        settings.vectors_dir,
        IndexMetrics(registry),
        sessions,
        threads=settings.vector_index_threads,
        wait_s=settings.vector_index_wait_s,
    )
    index_maintenance = IndexMaintenance(
        indexes,
        interval_s=settings.vector_compact_interval_s,
        ratio=settings.vector_compact_ratio,
        min_tombstones=settings.vector_compact_min_tombstones,
    )
    vectors = VectorService(
        indexes, exact_limit=settings.vector_exact_limit, max_candidates=settings.vector_max_candidates
    )
    app = build_app(
        settings=settings,
        registry=registry,
        sessions=sessions,
        auth_client=AuthClient(auth_channel, timeout_s=settings.auth_timeout_s),
        files=files,
        jobs=JobService(holds),
        vectors=vectors,
        outbox_kick=relay.kick,
        health_check=database_health(engine),
    )
    log.info("training starting", extra={"port": settings.http_port})
    await runner.serve(
        app,
        settings.http_host,
        settings.http_port,
        background=[
            relay.run,
            lambda: indexes.run_flusher(settings.vector_flush_interval_s),
            index_maintenance.run,
        ],
        on_shutdown=[indexes.flush, auth_channel.close, billing_channel.close, engine.dispose],
        metrics=MetricsEndpoint(registry, settings.metrics_port),
    )


def cli() -> None:
    runner.run(main)
