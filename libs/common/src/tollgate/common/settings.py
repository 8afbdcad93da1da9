"""Settings shared by every service; each service subclasses with its own env prefix."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from tollgate.common.transport_settings import TransportSecuritySettings


class ConflictingSettings(RuntimeError):
    """Two settings that say the same thing differently; the message names both, never a value."""


class ServiceSettings(TransportSecuritySettings):
    """Connection settings every service needs (TLS/SASL of each client: transport_settings.py).
    Subclasses set `env_prefix` (e.g. BILLING_)."""

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
    # Prometheus' GET /metrics, on http_host, never on the public HTTP port (metrics_endpoint.py)
    metrics_port: int = 9180
    database_url: str = "postgresql+psycopg://tollgate@127.0.0.1:55432/tollgate"
    # The password for database_url when the URL names none (a Secret's key, so the URL itself can sit
    # in a ConfigMap: deploy/k8s/overlays/production reads each role's CloudNativePG password secret).
    database_password: SecretStr = SecretStr("")
    # SQLAlchemy pool per process: at most db_pool_size + db_max_overflow connections. deploy/k8s sizes
    # them so every replica at the HPA's maximum fits PostgreSQL's max_connections (docs/operations.md).
    db_pool_size: int = Field(default=5, ge=1)
    db_max_overflow: int = Field(default=5, ge=0)
    redis_url: str = "redis://127.0.0.1:56379/0"
    kafka_bootstrap: str = "127.0.0.1:59092"
    # A group consumer that takes no records for this long while its group has uncommitted ones (and
    # no batch in hand) is replaced by a new one (tollgate.common.stall_watch); 0 turns the watch off.
    # 60 s is many times a rebalance's wait for a dead member (session_timeout_ms, 10 s).
    kafka_consumer_stall_s: float = Field(default=60.0, ge=0.0)
    auth_grpc_target: str = "127.0.0.1:50051"
    billing_grpc_target: str = "127.0.0.1:50052"
    log_level: str = "INFO"
    # Where spans go comes from the standard OTEL_* variables (tollgate.common.trace_export): without
    # an OTLP endpoint nothing is exported, and then no new trace is recorded at all. This adds a
    # console exporter (development).
    otel_exporter_console: bool = False
    # Share of new traces recorded when exporting (ParentBased: a caller's sampled/unsampled decision
    # is kept, so one trace is whole or absent across services); OTEL_TRACES_SAMPLER_ARG, when set,
    # wins. Unsampled requests still carry traceparent.
    otel_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _password_into_database_url(self) -> ServiceSettings:
        """Folds database_password into database_url (escaped), so every engine and migration uses it."""
        password = self.database_password.get_secret_value()
        if password:
            from sqlalchemy.engine import make_url

            url = make_url(self.database_url)
            if url.password is not None:
                # not a ValueError: pydantic would print the inputs, passwords included, with it
                raise ConflictingSettings(
                    f"{self.env_name('database_url')} names a password and "
                    f"{self.env_name('database_password')} sets one: set only one of them"
                )
            self.database_url = url.set(password=password).render_as_string(hide_password=False)
        return self
