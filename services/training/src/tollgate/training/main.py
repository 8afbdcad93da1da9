"""Composition root: settings, migrations, database and the HTTP app, run in one loop."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry

from tollgate.common import runner
from tollgate.common.db import database_health, make_engine
from tollgate.common.logging import configure_logging
from tollgate.common.migrations import migrate
from tollgate.common.telemetry import configure_tracing
from tollgate.training.app import build_app
from tollgate.training.config import TrainingSettings

log = logging.getLogger(__name__)


async def main() -> None:
    settings = TrainingSettings()
    configure_logging(settings.service_name, settings.log_level)
    configure_tracing(
        settings.service_name, console=settings.otel_exporter_console, sample_ratio=settings.otel_sample_ratio
    )
    if settings.run_migrations:
        await migrate(settings.alembic_ini, settings.database_url)
    engine = make_engine(settings.database_url, pool_size=2)
    app = build_app(CollectorRegistry(), health_check=database_health(engine))
    log.info("training starting", extra={"port": settings.http_port})
    await runner.serve(app, settings.http_host, settings.http_port, on_shutdown=[engine.dispose])


def cli() -> None:
    runner.run(main)
