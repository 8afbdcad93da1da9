"""Composition root: settings, database, Kafka, the key service, then REST + gRPC in one loop."""

from __future__ import annotations

import logging
from datetime import timedelta

from prometheus_client import CollectorRegistry

from tollgate.auth.app import build_app
from tollgate.auth.config import AuthSettings, checked_secrets, jwt_keys, key_peppers
from tollgate.auth.grants.service import ModelGrants
from tollgate.auth.grpc_server import AuthMetrics, AuthServicer
from tollgate.auth.guard.retention import GuardReportRetention
from tollgate.auth.keys.bootstrap import ensure_bootstrap_admin
from tollgate.auth.keys.events import KafkaKeyEvents
from tollgate.auth.keys.keygen import KeyHasher
from tollgate.auth.keys.last_used import LastUsedRecorder
from tollgate.auth.keys.peppers import label_unlabelled
from tollgate.auth.keys.service import KeyService, utcnow
from tollgate.auth.sessions.passwords import Passwords, argon2id
from tollgate.auth.sessions.principal import TokenPrincipals
from tollgate.auth.sessions.ratelimit import LoginLimiter
from tollgate.auth.sessions.service import SessionService
from tollgate.auth.sessions.tokens import TokenIssuer
from tollgate.auth.web import AuthRuntime
from tollgate.common.db import make_sessionmaker, service_engine
from tollgate.common.grpc import add_listener, make_server, server_tls
from tollgate.common.kafka import kafka_connection, make_producer
from tollgate.common.logging import configure_logging
from tollgate.common.metrics_endpoint import MetricsEndpoint
from tollgate.common.migrations import migrate
from tollgate.common.redis import make_redis
from tollgate.common.runner import run, serve
from tollgate.common.secret_policy import enforce
from tollgate.common.telemetry import configure_tracing
from tollgate.contracts.v1 import auth_pb2_grpc

log = logging.getLogger("tollgate.auth")


async def main(settings: AuthSettings | None = None) -> None:
    settings = settings or AuthSettings()
    configure_logging("auth", settings.log_level)
    tracing = configure_tracing(
        "auth", console=settings.otel_exporter_console, sample_ratio=settings.otel_sample_ratio
    )
    enforce(settings.environment, checked_secrets(settings), log)
    peppers = key_peppers(settings)
    signing_keys = jwt_keys(settings)
    # Key ids only (tollgate.common.keyring): which secrets are in use, never the secrets.
    log.info(
        "key material",
        extra={
            "pepper_id": peppers.current_id,
            "previous_pepper_ids": list(peppers.by_id())[1:],
            "jwt_kid": signing_keys.current_id,
            "previous_jwt_kids": list(signing_keys.by_id())[1:],
        },
    )

    if settings.run_migrations:
        await migrate(str(settings.alembic_ini), settings.database_url)

    engine = service_engine(settings, tracing)
    sessions = make_sessionmaker(engine)
    # Authenticate is a single SELECT: autocommit skips the BEGIN/ROLLBACK round trips around it.
    read_sessions = make_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"))
    last_used = LastUsedRecorder(sessions, settings.last_used_flush_s)
    hasher = KeyHasher(peppers)
    if not peppers.previous:  # outside a rotation every usable hash is under the current pepper
        async with sessions.begin() as session:
            if labelled := await label_unlabelled(session, peppers.current_id):
                log.info("labelled stored hashes with the current pepper id", extra={"rows": labelled})
    keys = KeyService(hasher, last_used, default_rate_tier=settings.default_rate_tier.strip())
    kafka = kafka_connection(settings)
    events = KafkaKeyEvents(lambda: make_producer(kafka, "tollgate-auth"), settings.kafka_publish_timeout_s)
    await events.start()  # tolerant: without Kafka the service still starts, and retries per publish

    if settings.admin_api_key is not None and settings.admin_api_key.get_secret_value():
        async with sessions.begin() as session:
            retired = await ensure_bootstrap_admin(
                session, hasher, settings.admin_api_key.get_secret_value(), utcnow()
            )
        await events.publish(retired)
        log.info("bootstrap admin key ensured")

    redis = make_redis(settings)
    tracing.instrument_redis(redis)
    token_issuer = TokenIssuer(
        signing_keys,
        access_ttl_s=settings.access_token_ttl_s,
        refresh_ttl_s=settings.refresh_token_ttl_s,
    )
    identity = SessionService(
        Passwords(
            argon2id(
                time_cost=settings.password_time_cost,
                memory_kib=settings.password_memory_kib,
                parallelism=settings.password_parallelism,
            ),
            concurrency=settings.password_hash_concurrency,
        ),
        token_issuer,
        LoginLimiter(
            redis,
            max_per_account=settings.login_max_failures_per_account,
            max_per_ip=settings.login_max_failures_per_ip,
            window_s=settings.login_window_s,
        ),
        keys,
    )
    runtime = AuthRuntime(
        sessions=sessions,
        keys=keys,
        events=events,
        identity=identity,
        trusted_proxies=frozenset(settings.trusted_proxies),
    )
    registry = CollectorRegistry()
    model_grants = ModelGrants(ungranted_means_all=settings.ungranted_means_all)
    # log-usage reuses the auth.keys.v1 producer (idempotent, acks=all) for usage.v1.
    app = build_app(
        runtime,
        engine,
        registry,
        model_grants,
        usage_sender=events,
        invitation_ttl=timedelta(seconds=settings.invitation_ttl_s),
    )
    guard_reports = GuardReportRetention(
        sessions,
        registry,
        retention_days=settings.guard_report_retention_days,
        interval_s=settings.guard_report_retention_interval_s,
    )
    grpc_server = make_server("auth")
    auth_pb2_grpc.add_AuthServiceServicer_to_server(
        AuthServicer(read_sessions, keys, AuthMetrics(registry), model_grants, TokenPrincipals(token_issuer)),
        grpc_server,
    )
    add_listener(grpc_server, f"{settings.grpc_host}:{settings.grpc_port}", server_tls(settings))
    log.info("auth starting", extra={"http_port": settings.http_port, "grpc_port": settings.grpc_port})

    async def shutdown() -> None:
        await last_used.flush()  # keep the stamps gathered since the last periodic flush
        await events.stop()
        await redis.aclose()
        await engine.dispose()

    await serve(
        app,
        settings.http_host,
        settings.http_port,
        grpc_server=grpc_server,
        background=[last_used.run, guard_reports.run],
        on_shutdown=[shutdown],
        metrics=MetricsEndpoint(registry, settings.metrics_port),
    )


def cli() -> None:
    run(main)
