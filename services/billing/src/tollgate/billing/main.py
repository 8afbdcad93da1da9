"""Composition roots of billing's two processes, which share one database and one Redis:

- `tollgate-billing` (the API): REST, the Reserve/Release/GetBalance gRPC server and the hold marks
  port (holds/mark_listener.py) on the gateway's hot path, and the expired-hold sweeper (which
  publishes marked holds' usage events);
- `tollgate-billing-worker`: the usage.v1 consumer that settles holds into the ledger.

They are separate processes because settling a batch is CPU work that, in one event loop, makes
the Reserve calls queued behind it wait for the whole batch; apart, the kernel interleaves them.
Each also scales on its own (replicas of the API, consumers up to usage.v1's partitions).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tollgate.billing.alerts.routes import router as alerts_router
from tollgate.billing.alerts.secretbox import SecretBox
from tollgate.billing.alerts.wiring import build_dispatcher, secret_box, secret_box_policy
from tollgate.billing.budgets.loaders import limits_loader, quota_recorder
from tollgate.billing.budgets.routes import router as budgets_router
from tollgate.billing.config import BillingSettings
from tollgate.billing.consumers.usage import UsageConsumer
from tollgate.billing.envelope import billing_error_renderer
from tollgate.billing.grpc_server import build_grpc_server
from tollgate.billing.holds.mark_listener import MarkListener
from tollgate.billing.holds.republish import MarkRepublisher
from tollgate.billing.holds.service import HoldService, WalletLoader
from tollgate.billing.holds.store import HoldStore
from tollgate.billing.metrics import BillingMetrics
from tollgate.billing.migrate import DEFAULT_ALEMBIC_INI
from tollgate.billing.payments.admin_routes import router as payment_admin_router
from tollgate.billing.payments.providers import PaymentProvider, PaymentProviders, TestProvider
from tollgate.billing.payments.purchase_routes import router as purchase_router
from tollgate.billing.payments.routes import router as payments_router
from tollgate.billing.settlements.partitions import SettlementPartitions
from tollgate.billing.wallets import repository as wallet_repository
from tollgate.billing.wallets.reconcile import Reconciler
from tollgate.billing.wallets.repository import WalletState
from tollgate.billing.wallets.routes import router as wallets_router
from tollgate.common.auth_client import AuthClient
from tollgate.common.db import database_health, make_sessionmaker, service_engine
from tollgate.common.errors import ServiceUnavailable
from tollgate.common.frames import stream_server_ssl
from tollgate.common.grpc import channel_tls, make_channel, server_tls
from tollgate.common.http import create_app
from tollgate.common.kafka import TOPIC_USAGE, kafka_connection, make_consumer, make_producer
from tollgate.common.logging import configure_logging
from tollgate.common.metrics_endpoint import MetricsEndpoint
from tollgate.common.migrations import migrate
from tollgate.common.redis import make_redis
from tollgate.common.runner import run, serve
from tollgate.common.secret_policy import enforce
from tollgate.common.stall_watch import StallWatch
from tollgate.common.telemetry import configure_tracing

log = logging.getLogger(__name__)


def wallet_loader(sessions: async_sessionmaker[AsyncSession]) -> WalletLoader:
    """Reads (creating at zero if missing) an org's wallet in its own short transaction."""

    async def load(org_id: str) -> WalletState:
        async with sessions.begin() as session:
            return await wallet_repository.get_or_create(session, org_id)

    return load


def health_check(engine: AsyncEngine, redis: Redis) -> Callable[[], Awaitable[dict[str, Any]]]:
    database = database_health(engine)

    async def health() -> dict[str, Any]:
        status = await database()
        try:
            await redis.ping()
        except (RedisError, OSError) as exc:
            raise ServiceUnavailable(f"Redis unavailable: {type(exc).__name__}.") from exc
        return {**status, "redis": "ok"}

    return health


def build_app(
    registry: CollectorRegistry,
    *,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    holds: HoldService,
    auth: AuthClient,
    metrics: BillingMetrics,
    webhook_secrets: SecretBox | None = None,
    payment_providers: PaymentProviders | None = None,
) -> FastAPI:
    app = create_app(
        "billing", registry, error_renderer=billing_error_renderer, health_check=health_check(engine, redis)
    )
    app.state.sessions = sessions
    app.state.holds = holds
    app.state.auth = auth
    app.state.metrics = metrics
    app.state.webhook_secrets = webhook_secrets
    app.include_router(payments_router)
    app.state.payment_providers = payment_providers or PaymentProviders({}, default="")
    app.state.reconciler = Reconciler(sessions, metrics)
    app.include_router(purchase_router)
    app.include_router(payment_admin_router)
    app.include_router(wallets_router)
    app.include_router(alerts_router)
    app.include_router(budgets_router)
    return app


def build_payment_providers(settings: BillingSettings) -> PaymentProviders:
    providers: dict[str, PaymentProvider] = {}
    secret = settings.payments_test_webhook_secret.get_secret_value()
    if secret:
        providers["test"] = TestProvider(
            secret.encode(), tolerance_seconds=settings.payments_webhook_tolerance_seconds
        )
    return PaymentProviders(providers, default=settings.payments_provider)


@dataclass
class _Shared:
    """What both processes build the same way: one engine, one Redis client, metrics."""

    registry: CollectorRegistry
    metrics: BillingMetrics
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    store: HoldStore

    async def close(self) -> None:
        await self.redis.aclose()
        await self.engine.dispose()


async def _shared(settings: BillingSettings, service: str) -> _Shared:
    configure_logging(service, settings.log_level)
    enforce(settings.environment, secret_box_policy(settings), log)
    tracing = configure_tracing(
        service, console=settings.otel_exporter_console, sample_ratio=settings.otel_sample_ratio
    )
    if settings.run_migrations:
        # an advisory lock in the Alembic env serialises concurrent starters
        await migrate(settings.alembic_ini or DEFAULT_ALEMBIC_INI, settings.database_url)
    registry = CollectorRegistry()
    engine = service_engine(settings, tracing)
    # A blocking pool: a burst of Reserves beyond the pool waits for a connection instead of failing.
    redis = make_redis(settings, decode_responses=True, max_connections=settings.redis_max_connections)
    tracing.instrument_redis(redis)
    store = HoldStore(
        redis, prefix=settings.redis_prefix, wallet_ttl_seconds=settings.wallet_cache_ttl_seconds
    )
    return _Shared(registry, BillingMetrics(registry), engine, make_sessionmaker(engine), redis, store)


async def main(settings: BillingSettings | None = None) -> None:
    settings = settings or BillingSettings()
    shared = await _shared(settings, "billing")
    kafka = kafka_connection(settings)
    republisher = MarkRepublisher(lambda: make_producer(kafka, "tollgate-billing"))
    holds = HoldService(
        shared.store,
        wallet_loader(shared.sessions),
        shared.metrics,
        load_limits=limits_loader(shared.sessions),
        record_quota=quota_recorder(shared.sessions),
        hold_ttl_seconds=settings.hold_ttl_seconds,
        stock_headroom=settings.hold_stock_headroom,
        mark_grace_seconds=settings.hold_mark_grace_seconds,
        mark_flush_interval_s=settings.hold_mark_flush_seconds,
        publish_marks=republisher,
    )
    auth_channel = make_channel(settings.auth_grpc_target, channel_tls(settings))
    app = build_app(
        shared.registry,
        engine=shared.engine,
        sessions=shared.sessions,
        redis=shared.redis,
        holds=holds,
        auth=AuthClient(auth_channel),
        metrics=shared.metrics,
        webhook_secrets=secret_box(settings),
        payment_providers=build_payment_providers(settings),
    )
    grpc_server, _ = build_grpc_server(
        holds, shared.metrics, settings.http_host, settings.grpc_port, tls=server_tls(settings)
    )
    mark_listener = MarkListener(
        holds.mark, shared.metrics, settings.http_host, settings.marks_port, tls=stream_server_ssl(settings)
    )
    await mark_listener.start()  # a port already taken stops the start here, not in a background task

    async def close() -> None:
        await mark_listener.close()
        await holds.marks.close()
        await republisher.close()
        await auth_channel.close()
        await shared.close()

    log.info(
        "billing starting",
        extra={
            "http_port": settings.http_port,
            "grpc_port": settings.grpc_port,
            "marks_port": settings.marks_port,
        },
    )
    await serve(
        app,
        settings.http_host,
        settings.http_port,
        grpc_server=grpc_server,
        background=[
            lambda: holds.run_sweeper(settings.sweep_interval_seconds),
            holds.marks.run,
            mark_listener.run,
            lambda: app.state.reconciler.run(settings.reconcile_interval_seconds),
        ],
        on_shutdown=[close],
        metrics=MetricsEndpoint(shared.registry, settings.metrics_port),
    )


async def worker_main(settings: BillingSettings | None = None) -> None:
    settings = settings or BillingSettings()
    shared = await _shared(settings, "billing-worker")

    kafka = kafka_connection(settings)

    def usage_consumer() -> AIOKafkaConsumer:
        return make_consumer(kafka, settings.consumer_group, TOPIC_USAGE)

    watch = StallWatch.of_group(
        kafka, settings.consumer_group, TOPIC_USAGE, stall_s=settings.kafka_consumer_stall_s
    )
    consumer = UsageConsumer(
        usage_consumer(),
        shared.sessions,
        shared.store,
        shared.metrics,
        max_records=settings.consumer_max_records,
        failpoint=settings.failpoint,
        renew=usage_consumer,
        watch=watch,
    )
    # only the probes (and metrics on their own port): the worker serves no API
    app = create_app(
        "billing-worker", shared.registry, health_check=health_check(shared.engine, shared.redis)
    )
    dispatcher, close_dispatcher = build_dispatcher(settings, shared.sessions, shared.registry)
    partitions = SettlementPartitions(
        shared.sessions,
        shared.metrics,
        retention_days=settings.settlement_retention_days,
        interval_s=settings.settlement_maintenance_interval_s,
    )
    log.info("billing worker starting", extra={"http_port": settings.worker_http_port})
    await serve(
        app,
        settings.http_host,
        settings.worker_http_port,
        background=[consumer.run, dispatcher.run, partitions.run],
        on_shutdown=[close_dispatcher, shared.close, watch.close],
        metrics=MetricsEndpoint(shared.registry, settings.worker_metrics_port),
    )


def worker_cli() -> None:
    run(worker_main)


def cli() -> None:
    run(main)
