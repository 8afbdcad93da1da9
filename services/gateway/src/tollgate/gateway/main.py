"""Composition root: builds settings, engine, clients and the app; runs HTTP and background tasks."""

from __future__ import annotations

import logging
from importlib.metadata import version as package_version
from typing import Any

import httpx
from prometheus_client import CollectorRegistry

from tollgate.common import runner
from tollgate.common.auth_client import AuthClient
from tollgate.common.db import make_sessionmaker, service_engine
from tollgate.common.frames import stream_client_ssl
from tollgate.common.grpc import channel_tls, make_channel
from tollgate.common.kafka import kafka_connection, make_producer
from tollgate.common.logging import configure_logging
from tollgate.common.metrics_endpoint import MetricsEndpoint
from tollgate.common.migrations import migrate
from tollgate.common.money import credits_to_micros
from tollgate.common.networks import parse_networks
from tollgate.common.redis import make_redis
from tollgate.common.secret_policy import enforce
from tollgate.common.telemetry import configure_tracing
from tollgate.gateway.app import GatewayParts, build_app
from tollgate.gateway.bots.wiring import build_bots
from tollgate.gateway.catalog.deployments import DeploymentConsumer
from tollgate.gateway.catalog.deployments import default_factory as deployments_factory
from tollgate.gateway.catalog.secrets import secret_box, secret_box_policy
from tollgate.gateway.catalog.snapshot import CatalogSnapshot, UpstreamPool, default_client_factory
from tollgate.gateway.completions.billing import BillingClient
from tollgate.gateway.completions.hold_stock import HoldStock
from tollgate.gateway.completions.service import ChatCompletions
from tollgate.gateway.config import GatewaySettings
from tollgate.gateway.db import alembic_ini
from tollgate.gateway.limits.cells import RedisCells
from tollgate.gateway.limits.gate import RateGate
from tollgate.gateway.limits.leases import Limiter
from tollgate.gateway.limits.route_limits import RouteLimits
from tollgate.gateway.metrics import GatewayMetrics
from tollgate.gateway.operations.service import Operations
from tollgate.gateway.pipeline import Pipeline
from tollgate.gateway.pricing.cost import PricingPolicy
from tollgate.gateway.principals.cache import PrincipalCache
from tollgate.gateway.principals.consumer import KeyInvalidationConsumer, default_consumer_factory
from tollgate.gateway.proxy.forwarder import Forwarder
from tollgate.gateway.realtime.wiring import build_realtime
from tollgate.gateway.records.recorder import ChatRecorder, RecordMetrics
from tollgate.gateway.routing.attempts import Router
from tollgate.gateway.routing.breaker import Cooldowns
from tollgate.gateway.usage.emitter import UsageEmitter
from tollgate.gateway.usage.marks import HoldMarker
from tollgate.gateway.usage.recorder import UsageRecorder
from tollgate.gateway.usage.spool import RedisSpool

log = logging.getLogger("tollgate.gateway")


async def main() -> None:
    settings = GatewaySettings()
    configure_logging("gateway", settings.log_level)
    # httpx logs every request at INFO: at 1,000 requests/s that is hot-path work, not information.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    tracing = configure_tracing(
        "gateway", console=settings.otel_exporter_console, sample_ratio=settings.otel_sample_ratio
    )
    enforce(settings.environment, secret_box_policy(settings), log)
    if settings.run_migrations:
        await migrate(alembic_ini(), settings.database_url)

    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry)
    engine = service_engine(settings, tracing)
    sessions = make_sessionmaker(engine)
    box = secret_box(settings)
    pool = UpstreamPool(default_client_factory(settings.upstream_max_connections))
    snapshot = CatalogSnapshot(sessions, box, pool, poll_s=settings.catalog_poll_s)
    await snapshot.reload()

    # TLS/SASL settings are read (and their files loaded) once, here: the hot path never sees them
    grpc_tls = channel_tls(settings)
    kafka = kafka_connection(settings)
    auth_channel = make_channel(settings.auth_grpc_target, grpc_tls)
    billing_channel = make_channel(settings.billing_grpc_target, grpc_tls)
    principals = PrincipalCache(
        AuthClient(auth_channel, timeout_s=settings.grpc_timeout_s).authenticate,
        metrics,
        ttl_s=settings.auth_cache_ttl_s,
        negative_ttl_s=settings.auth_negative_ttl_s,
        max_entries=settings.auth_cache_max_entries,
    )
    # fine-tuned models from training.v1 (ModelDeployed / ModelDeleted) into the catalog
    deployments = DeploymentConsumer(deployments_factory(kafka), sessions, snapshot)
    key_consumer = KeyInvalidationConsumer(default_consumer_factory(kafka), principals, metrics)
    redis = make_redis(settings)
    tracing.instrument_redis(redis)
    emitter = UsageEmitter(
        lambda: make_producer(kafka, "tollgate-gateway", linger_ms=settings.usage_linger_ms),
        RedisSpool(redis, settings.usage_spool_stream),
        metrics,
        send_timeout_s=settings.usage_send_timeout_s,
        drain_interval_s=settings.usage_drain_interval_s,
    )
    marker = (
        HoldMarker(
            settings.billing_marks_target,
            metrics,
            tls=stream_client_ssl(settings),
            server_name=settings.grpc_tls_server_name,
            max_wait_s=settings.hold_mark_max_wait_s,
        )
        if settings.hold_marks
        else None
    )
    usage = UsageRecorder(emitter, marker)
    billing = BillingClient(billing_channel, timeout_s=settings.grpc_timeout_s, marks=marker, metrics=metrics)
    pricing = PricingPolicy.from_settings(
        settings.batch_multiplier, credits_to_micros(settings.default_request_price)
    )
    hold_stock = HoldStock(
        billing,
        metrics,
        depth=settings.hold_stock_depth,
        max_depth=settings.hold_stock_max_depth,
        cover_s=settings.hold_stock_cover_s,
        max_age_s=settings.hold_stock_max_age_s,
        hot_window_s=settings.hold_stock_hot_window_s,
    )
    limiter = Limiter(
        RedisCells(redis),
        max_lease=settings.rate_limit_max_lease,
        lease_ttl_s=settings.rate_limit_lease_ttl_s,
    )
    rate_gate = RateGate(limiter, metrics) if settings.rate_limits else None
    router = Router(
        Cooldowns(threshold=settings.routing_cooldown_failures, cooldown_s=settings.routing_cooldown_s),
        retries=settings.routing_retries,
        backoff_s=settings.routing_backoff_s,
    )
    # one pipeline per process: chat and the other operations share its router and its cooldowns;
    # the hold stock serves /v1/chat/completions (the calls that ask for it)
    pipeline = Pipeline(
        principals,
        snapshot,
        billing,
        usage,
        metrics,
        pricing=pricing,
        upstream_timeout_s=settings.upstream_timeout_s,
        default_max_tokens=settings.default_max_tokens,
        router=router,
        hold_stock=hold_stock,
        rate_gate=rate_gate,
    )
    # chat records (docs/chat-records.md): its own producer, used only by recording organisations
    chat_recorder = ChatRecorder(
        lambda: make_producer(kafka, "tollgate-gateway-records", linger_ms=settings.usage_linger_ms),
        RecordMetrics(registry),
    )
    chat = ChatCompletions(pipeline, metrics, chat_recorder)
    route_limits = RouteLimits(
        credit_chat_rpm_per_address=settings.credit_chat_rpm_per_address,
        indoxrouter_requests_per_hour=settings.indoxrouter_requests_per_hour,
        trusted_proxies=parse_networks(settings.trusted_proxies),
    )
    operations = Operations(pipeline, route_limits)
    forwarder = Forwarder(
        {
            "auth": settings.auth_http_url,
            "billing": settings.billing_http_url,
            "analytics": settings.analytics_http_url,
            "training": settings.training_http_url,
        },
        httpx.AsyncClient(trust_env=False, limits=httpx.Limits(max_connections=200)),
        timeout_s=settings.proxy_timeout_s,
    )

    # /ws: Kafka facts into per-organisation Redis streams, pushed to this process's connections
    realtime = build_realtime(settings, kafka, principals, registry) if settings.realtime else None

    # Feishu bots: admin routes, event endpoints and the worker answering through this gateway
    def model_known(name: str) -> bool:
        return snapshot.get(name) is not None

    bots = (
        build_bots(settings, sessions, box, principals.get, model_known, registry)
        if settings.feishu_bots
        else None
    )

    async def health() -> dict[str, Any]:
        return {"models": len(snapshot), "kafka": "up" if emitter.kafka_up else "down"}

    app = build_app(
        GatewayParts(
            registry=registry,
            sessions=sessions,
            snapshot=snapshot,
            box=box,
            principals=principals,
            chat=chat,
            forwarder=forwarder,
            default_max_tokens=settings.default_max_tokens,
            operations=operations,
            credit_chat_max_tokens=settings.credit_chat_max_tokens,
            sloughgpt_default_model=settings.sloughgpt_default_model,
            version=package_version("tollgate-gateway"),
            trust_client_request_id=settings.trust_client_request_id,
            health=health,
            realtime=realtime.realtime if realtime is not None else None,
            bots=bots,
        )
    )

    async def close_clients() -> None:
        await forwarder.close()
        await pool.close()
        await auth_channel.close()
        await billing_channel.close()
        await redis.aclose()
        await engine.dispose()

    log.info("gateway listening", extra={"port": settings.http_port, "models": len(snapshot)})
    await runner.serve(
        app,
        settings.http_host,
        settings.http_port,
        background=[
            emitter.run,
            chat_recorder.run,
            key_consumer.run,
            snapshot.poll_forever,
            hold_stock.run_sweeper,
            limiter.run_sweeper,  # unused leases of keys gone quiet go back
            deployments.run,
            *(realtime.background if realtime is not None else []),
            *([marker.run] if marker is not None else []),
            *([bots.worker.run] if bots is not None else []),
        ],
        # The emitter flushes first: requests finishing during shutdown still emit into it. Stocked
        # holds go back to billing and the last marks are written before its channel closes.
        on_shutdown=[
            *([bots.close] if bots is not None else []),
            emitter.close,
            chat_recorder.close,
            hold_stock.close,
            limiter.close,
            *([marker.close] if marker is not None else []),
            close_clients,
            *([realtime.close] if realtime is not None else []),
        ],
        metrics=MetricsEndpoint(registry, settings.metrics_port),
    )


def cli() -> None:
    runner.run(main)


if __name__ == "__main__":
    cli()
