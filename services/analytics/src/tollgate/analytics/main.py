"""Composition root: settings, database, auth client, consumer and HTTP app, run in one loop."""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from tollgate.analytics.app import build_app
from tollgate.analytics.config import AnalyticsSettings
from tollgate.analytics.consumers.chat_records import ChatRecordConsumer, RetentionPurger
from tollgate.analytics.consumers.usage import UsageConsumer
from tollgate.analytics.metrics import AnalyticsMetrics
from tollgate.analytics.records.metrics import ChatRecordMetrics
from tollgate.analytics.records.service import ChatRecordService
from tollgate.analytics.records.wiring import content_box, content_box_policy
from tollgate.analytics.usage.insights import InsightsService
from tollgate.analytics.usage.partitions import PartitionMaintenance, Retention
from tollgate.analytics.usage.repository import UsageRepository
from tollgate.analytics.usage.service import StoredWindow, UsageService
from tollgate.common import runner
from tollgate.common.auth_client import AuthClient
from tollgate.common.db import database_health, make_sessionmaker, service_engine
from tollgate.common.grpc import channel_tls, make_channel
from tollgate.common.kafka import TOPIC_CHAT_RECORDS, TOPIC_USAGE, kafka_connection, make_consumer
from tollgate.common.logging import configure_logging
from tollgate.common.metrics_endpoint import MetricsEndpoint
from tollgate.common.migrations import migrate
from tollgate.common.secret_policy import enforce
from tollgate.common.stall_watch import StallWatch
from tollgate.common.telemetry import configure_tracing

log = logging.getLogger(__name__)


async def main() -> None:
    settings = AnalyticsSettings()
    configure_logging(settings.service_name, settings.log_level)
    tracing = configure_tracing(
        settings.service_name, console=settings.otel_exporter_console, sample_ratio=settings.otel_sample_ratio
    )
    enforce(settings.environment, content_box_policy(settings), log)
    if settings.run_migrations:
        await migrate(settings.alembic_ini, settings.database_url)

    engine = service_engine(settings, tracing)
    sessions = make_sessionmaker(engine)
    registry = CollectorRegistry()
    metrics = AnalyticsMetrics(registry)
    auth_channel = make_channel(settings.auth_grpc_target, channel_tls(settings))
    repository = UsageRepository()
    usage_service = UsageService(repository, StoredWindow(settings.usage_retention_days))
    maintenance = PartitionMaintenance(
        sessions,
        Retention(settings.usage_retention_days, settings.usage_hourly_retention_days),
        metrics,
        interval_s=settings.partition_maintenance_interval_s,
    )

    records = ChatRecordService(content_box(settings), search_scan=settings.chat_search_scan)
    record_metrics = ChatRecordMetrics(registry)

    app = build_app(
        settings=settings,
        registry=registry,
        sessions=sessions,
        auth_client=AuthClient(auth_channel, timeout_s=settings.auth_timeout_s),
        usage_service=usage_service,
        health_check=database_health(engine),
        records=records,
        insights_service=InsightsService(repository),
    )

    kafka = kafka_connection(settings)

    def usage_consumer() -> AIOKafkaConsumer:
        return make_consumer(
            kafka,
            settings.consumer_group,
            TOPIC_USAGE,
            max_poll_records=settings.consume_max_records,
        )

    watch = StallWatch.of_group(
        kafka, settings.consumer_group, TOPIC_USAGE, stall_s=settings.kafka_consumer_stall_s
    )
    consumer = UsageConsumer(
        usage_consumer(),
        sessions,
        usage_service,
        metrics,
        max_records=settings.consume_max_records,
        timeout_ms=settings.consume_timeout_ms,
        renew=usage_consumer,
        watch=watch,
    )

    def chat_consumer() -> AIOKafkaConsumer:
        return make_consumer(kafka, settings.chat_consumer_group, TOPIC_CHAT_RECORDS, max_poll_records=200)

    chat_watch = StallWatch.of_group(
        kafka, settings.chat_consumer_group, TOPIC_CHAT_RECORDS, stall_s=settings.kafka_consumer_stall_s
    )
    chat_records = ChatRecordConsumer(
        chat_consumer(), sessions, records, record_metrics, renew=chat_consumer, watch=chat_watch
    )
    purger = RetentionPurger(sessions, records, record_metrics, settings.chat_purge_interval_s)
    log.info("analytics starting", extra={"port": settings.http_port})
    await runner.serve(
        app,
        settings.http_host,
        settings.http_port,
        background=[consumer.run, maintenance.run, chat_records.run, purger.run],
        on_shutdown=[auth_channel.close, engine.dispose, watch.close, chat_watch.close],
        metrics=MetricsEndpoint(registry, settings.metrics_port),
    )


def cli() -> None:
    runner.run(main)
