"""Composition root of `tollgate-training-worker`: leases jobs and runs them on the configured
executor (local processes, or Kubernetes Jobs), relays the outbox to Kafka, and serves /healthz on
TRAINING_WORKER_HTTP_PORT and /metrics on TRAINING_WORKER_METRICS_PORT."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path

from prometheus_client import CollectorRegistry

from tollgate.common import runner
from tollgate.common.db import database_health, make_sessionmaker, service_engine
from tollgate.common.http import create_app
from tollgate.common.kafka import kafka_connection, make_producer
from tollgate.common.logging import configure_logging
from tollgate.common.metrics_endpoint import MetricsEndpoint
from tollgate.common.migrations import migrate
from tollgate.common.telemetry import configure_tracing
from tollgate.training.config import TrainingSettings
from tollgate.training.events.outbox import OutboxMetrics, OutboxRelay
from tollgate.training.metrics import WorkerMetrics
from tollgate.training.notify import JOBS_CHANNEL, OUTBOX_CHANNEL, NotifyListener
from tollgate.training.worker.executors import Executor, LocalExecutor
from tollgate.training.worker.leases import Leases
from tollgate.training.worker.service import TrainingWorker

log = logging.getLogger(__name__)


def job_command() -> list[str]:
    local = Path(sys.executable).parent / "tollgate-training-job"
    found = str(local) if local.exists() else shutil.which("tollgate-training-job")
    return [found] if found else [sys.executable, "-m", "tollgate.training.trainer"]


def job_environment(settings: TrainingSettings, environ: Mapping[str, str]) -> dict[str, str]:
    """A local job process's environment: the worker's, with the job's malloc tunables
    (config.py `job_malloc_tunables`) unless the environment already sets GLIBC_TUNABLES."""
    env = dict(environ)
    if settings.job_malloc_tunables and "GLIBC_TUNABLES" not in env:
        env["GLIBC_TUNABLES"] = settings.job_malloc_tunables
    return env


def build_executor(settings: TrainingSettings) -> Executor:
    if settings.executor == "kubernetes":
        from tollgate.training.worker.kubernetes import KubernetesExecutor, in_cluster_api

        return KubernetesExecutor(settings, in_cluster_api())
    env = job_environment(settings, os.environ)
    return LocalExecutor(job_command(), env, warm_spare=settings.warm_spare)


async def main() -> None:
    settings = TrainingSettings(service_name="training-worker")
    configure_logging(settings.service_name, settings.log_level)
    tracing = configure_tracing(
        settings.service_name, console=settings.otel_exporter_console, sample_ratio=settings.otel_sample_ratio
    )
    if settings.run_migrations:
        await migrate(settings.alembic_ini, settings.database_url)
    engine = service_engine(settings, tracing)
    sessions = make_sessionmaker(engine)
    registry = CollectorRegistry()
    kafka = kafka_connection(settings)
    relay = OutboxRelay(
        sessions,
        lambda: make_producer(kafka, "tollgate-training-worker"),
        OutboxMetrics(registry),
        interval_s=settings.outbox_interval_s,
        batch=settings.outbox_batch,
        listener=NotifyListener(engine, OUTBOX_CHANNEL),
    )
    executor = build_executor(settings)
    await executor.warm()
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    worker = TrainingWorker(
        Leases(sessions, owner, ttl_s=settings.lease_ttl_s, max_attempts=settings.max_attempts),
        executor,
        WorkerMetrics(registry),
        max_jobs=settings.max_concurrent_jobs,
        poll_s=settings.poll_interval_s,
        heartbeat_s=settings.heartbeat_s,
        stop_grace_s=settings.stop_grace_s,
        kick_outbox=relay.kick,
        idle_poll_s=settings.idle_poll_interval_s,
        listener=NotifyListener(engine, JOBS_CHANNEL),
    )
    app = create_app("training-worker", registry, health_check=database_health(engine))
    log.info("training worker starting", extra={"owner": owner, "executor": settings.executor})
    await runner.serve(
        app,
        settings.http_host,
        settings.worker_http_port,
        background=[worker.run, relay.run],
        on_shutdown=[engine.dispose],
        metrics=MetricsEndpoint(registry, settings.worker_metrics_port),
    )


def cli() -> None:
    runner.run(main)
