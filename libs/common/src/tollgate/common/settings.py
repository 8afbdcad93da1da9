"""Settings shared by every service; each service subclasses with its own env prefix."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Connection settings every service needs. Subclasses set `env_prefix` (e.g. BILLING_)."""

    model_config = SettingsConfigDict(env_prefix="TOLLGATE_", extra="ignore")

    # development (the local stack, tests) or production (deploy/k8s): weak secrets stop a production
    # start (secret_policy.py). One variable for every service, whatever its prefix.
    environment: str = Field(default="development", validation_alias=AliasChoices("TOLLGATE_ENV"))
    service_name: str = "tollgate"
    # Alembic migrations to head when the process starts (<P>RUN_MIGRATIONS, the same switch for every
    # service). deploy/k8s turns it off and runs `python -m tollgate.<service>.migrate` as a Job.
    run_migrations: bool = True
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    database_url: str = "postgresql+psycopg://tollgate@127.0.0.1:55432/tollgate"
    redis_url: str = "redis://127.0.0.1:56379/0"
    kafka_bootstrap: str = "127.0.0.1:59092"
    auth_grpc_target: str = "127.0.0.1:50051"
    billing_grpc_target: str = "127.0.0.1:50052"
    log_level: str = "INFO"
    # OTLP is optional: without an endpoint spans are kept in-process (sampled, not exported).
    otel_exporter_console: bool = False
    # Share of new traces recorded (ParentBased: a caller's sampled/unsampled decision is kept, so
    # one trace is whole or absent across services). Unsampled requests still carry traceparent.
    otel_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
