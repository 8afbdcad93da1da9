"""Billing settings, read from the environment under the BILLING_ prefix."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from tollgate.common.settings import ServiceSettings


class BillingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="BILLING_", extra="ignore")

    service_name: str = "billing"
    http_port: int = 8082
    grpc_port: int = 50052
    # the usage consumer process (tollgate-billing-worker) serves /healthz and /metrics here
    worker_http_port: int = 8085
    database_url: str = "postgresql+psycopg://tollgate@127.0.0.1:55432/tollgate_billing"
    db_pool_size: int = 10

    # Holds older than this are released by the sweeper (a crashed gateway never settles them).
    hold_ttl_seconds: int = 600
    sweep_interval_seconds: float = 5.0
    # Cached wallets expire so a refresh lost in a crash cannot leave Redis stale for long;
    # the next Reserve reloads from PostgreSQL, the source of truth.
    wallet_cache_ttl_seconds: int = 3600
    # Prefix of every Redis key billing owns (tests use a random one).
    redis_prefix: str = "billing"

    consumer_group: str = "billing-usage"
    consumer_max_records: int = 1000
    # Only the crash test sets this ("crash_after_db_commit").
    failpoint: str = ""
    # Run Alembic to head at start; the alembic.ini next to the package unless overridden.
    migrate_on_start: bool = True
    alembic_ini: str = ""
